"""Apply and inspect Alembic migrations on the server's database."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from signalpost.kit.db import Database


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "signalpost:migrations")
    return cfg


def _upgrade(conn: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


async def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to `revision`; safe to run from several processes at once on PostgreSQL."""
    async with db.engine.begin() as conn:
        if not db.is_sqlite:
            # One migrator at a time across processes.
            await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7391843201)")
        await conn.run_sync(_upgrade, revision)


def _current(conn: Connection) -> tuple[str | None, str | None]:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    current = MigrationContext.configure(conn).get_current_revision()
    return current, head


async def has_schema(db: Database) -> bool:
    """Whether the database holds a signalpost schema (at any revision)."""
    from sqlalchemy import inspect

    async with db.engine.connect() as conn:
        return bool(await conn.run_sync(lambda c: inspect(c).has_table("alembic_version")))


async def is_current(db: Database) -> bool:
    """True when the database is at the newest migration."""
    async with db.engine.connect() as conn:
        current, head = await conn.run_sync(_current)
    return current == head


def revision_info(conn: Connection) -> dict[str, Any]:
    current, head = _current(conn)
    return {"current": current, "head": head}
