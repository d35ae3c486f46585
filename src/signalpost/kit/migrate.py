"""Apply and inspect Alembic migrations on the server's database."""

from __future__ import annotations

import functools
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from signalpost.kit.db import Database, UnitOfWork

# The PostgreSQL advisory lock that lets one process at a time set a database up.
_SETUP_LOCK = 7391843201


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "signalpost:migrations")
    return cfg


def _upgrade(conn: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


async def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to `revision`; safe to run from several processes at once on PostgreSQL.

    A schema already at the newest migration is only read (one-shot commands run this each time,
    and must not take SQLite's write lock from a running server for nothing). Otherwise the
    migration runs as a unit of work of the database (on SQLite: in the process's write turns).
    """
    if revision == "head" and await is_current(db):
        return
    async with db.transaction() as uow:
        await one_at_a_time(uow)
        await uow.conn.run_sync(functools.partial(_upgrade, revision=revision))


async def one_at_a_time(uow: UnitOfWork) -> None:
    """Hold the setup lock until `uow` ends: processes starting together on one database migrate
    and create the default organization one after the other (on SQLite the write lock does it)."""
    if not uow.db.is_sqlite:
        await uow.conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SETUP_LOCK})


def _current(conn: Connection) -> tuple[str | None, str | None]:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    current = MigrationContext.configure(conn).get_current_revision()
    return current, head


async def has_schema(db: Database) -> bool:
    """Whether the database holds a signalpost schema (at any revision)."""
    from sqlalchemy import inspect

    return bool(await db.read(lambda c: inspect(c).has_table("alembic_version")))


async def is_current(db: Database) -> bool:
    """True when the database is at the newest migration (a read: no write lock, no write turn)."""
    current, head = await db.read(_current)
    return current == head


def revision_info(conn: Connection) -> dict[str, Any]:
    current, head = _current(conn)
    return {"current": current, "head": head}
