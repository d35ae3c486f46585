"""The migrations, applied to an empty database, build exactly the schema `models.py` describes, on
SQLite and PostgreSQL; `signalpost db upgrade` is idempotent (and safe to run concurrently on
PostgreSQL)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import delete, func, inspect, select
from sqlalchemy.engine import Connection

from signalpost.app import build_context, prepare
from signalpost.kit import migrate
from signalpost.kit.compact import micros
from signalpost.kit.db import Database
from signalpost.models import api_keys, metadata, organizations
from tests.conftest import create_pg_database, drop_pg_database
from tests.conftest import test_settings as make_settings

ROOT = Path(__file__).resolve().parents[2]


def _differences(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(
        conn, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, metadata))


def _index(index: Any) -> str:
    """An index as text; a partial index's WHERE clause (an SQL object) as its SQL."""
    options = {k: str(v) for k, v in index.get("dialect_options", {}).items()}
    return str(sorted({**index, "dialect_options": options}.items()))


def _schema(conn: Connection) -> dict[str, Any]:
    """Tables with their columns, indexes, unique constraints and foreign keys."""
    insp = inspect(conn)
    return {
        table: {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)
            ],
            "indexes": sorted(_index(i) for i in insp.get_indexes(table)),
            "unique": sorted(str(sorted(u.items())) for u in insp.get_unique_constraints(table)),
            "fks": sorted(str(sorted(f.items())) for f in insp.get_foreign_keys(table)),
        }
        for table in sorted(insp.get_table_names())
    }


def _version(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def on_db(url: str, fn: Any) -> Any:
    async def go() -> Any:
        db = Database(url)
        try:
            async with db.engine.connect() as conn:
                return await conn.run_sync(fn)
        finally:
            await db.dispose()

    return asyncio.run(go())


def upgrade(url: str) -> None:
    async def go() -> None:
        db = Database(url)
        try:
            await migrate.upgrade(db)
        finally:
            await db.dispose()

    asyncio.run(go())


def head() -> str:
    revision = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    assert revision
    return revision


def test_migrations_from_empty_equal_the_models(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    assert on_db(empty_db_url, _differences) == []
    tables = set(on_db(empty_db_url, lambda c: inspect(c).get_table_names()))
    assert tables == set(metadata.tables) | {"alembic_version"}
    assert on_db(empty_db_url, _version) == head()


def test_the_comparison_notices_a_schema_that_drifted(empty_db_url: str) -> None:
    """Guards the guard: a missing index and an extra column show up as differences."""
    upgrade(empty_db_url)

    def drift(conn: Connection) -> list[Any]:
        with conn.begin() as tx:
            conn.exec_driver_sql("DROP INDEX ix_jobs_group_key")
            conn.exec_driver_sql("ALTER TABLE jobs ADD COLUMN priority INTEGER")
            found = _differences(conn)
            tx.rollback()
        return found

    found = on_db(empty_db_url, drift)
    kinds = sorted(d[0] if isinstance(d, tuple) else d[0][0] for d in found)
    assert kinds == ["add_index", "remove_column"], found
    assert on_db(empty_db_url, _differences) == []  # the drift was rolled back


def signalpost(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "signalpost"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "signalpost.cli"]
    return subprocess.run(
        [*command, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def test_db_upgrade_command_is_idempotent(empty_db_url: str) -> None:
    first = signalpost("db", "upgrade", "--database-url", empty_db_url)
    assert first.returncode == 0, first.stderr
    assert "database is up to date" in first.stdout
    schema = on_db(empty_db_url, _schema)
    assert "jobs" in schema

    second = signalpost("db", "upgrade", "--database-url", empty_db_url)
    assert second.returncode == 0, second.stderr
    assert "database is up to date" in second.stdout
    assert on_db(empty_db_url, _schema) == schema
    assert on_db(empty_db_url, _version) == head()
    assert on_db(empty_db_url, _differences) == []


@pytest.mark.postgres
def test_concurrent_upgrades_on_postgres_do_not_collide() -> None:
    url, name = create_pg_database()
    try:
        script = Path(sys.executable).parent / "signalpost"
        command = [str(script)] if script.exists() else [sys.executable, "-m", "signalpost.cli"]
        procs = [
            subprocess.Popen(
                [*command, "db", "upgrade", "--database-url", url],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        results = [p.communicate(timeout=60) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], results
        assert on_db(url, _version) == head()
        assert on_db(url, _differences) == []
    finally:
        drop_pg_database(name)


def test_0006_rewrites_existing_sqlite_rows_and_back(tmp_path: Path) -> None:
    """Rows written before 0006 (text ids and times) read back the same after it, and its
    downgrade gives the text back as it was."""
    from alembic import command
    from sqlalchemy import select, text

    from signalpost.models import organizations

    url = f"sqlite+aiosqlite:///{tmp_path}/old.db"
    org_id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
    written = "2026-01-02 03:04:05.123456"

    async def go() -> None:
        db = Database(url)
        try:
            await migrate.upgrade(db, "0005")
            async with db.engine.begin() as conn:
                await conn.execute(
                    text("INSERT INTO organizations VALUES (:id, 'old', 's', 'p', :at)"),
                    {"id": org_id, "at": written},
                )
            await migrate.upgrade(db)
            async with db.engine.connect() as conn:
                row = (await conn.execute(select(organizations))).one()
                stored = (
                    await conn.execute(text("SELECT id, created_at FROM organizations"))
                ).one()
            assert row.id == org_id
            assert row.created_at == datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
            assert stored == (bytes.fromhex(org_id.replace("-", "")), micros(row.created_at))

            def down(conn: Connection) -> None:
                cfg = migrate.alembic_config()
                cfg.attributes["connection"] = conn
                command.downgrade(cfg, "0005")

            async with db.engine.begin() as conn:
                await conn.run_sync(down)
            async with db.engine.connect() as conn:
                back = (await conn.execute(text("SELECT id, created_at FROM organizations"))).one()
            assert back == (org_id, written)
        finally:
            await db.dispose()

    asyncio.run(go())


def test_processes_starting_together_set_the_database_up_once(empty_db_url: str) -> None:
    """`serve` and `worker` processes started at once on a new database each migrate it and
    create the default organization with the fixed key: none fails on the others' rows (a
    unique violation ended one of them at startup) and there is one organization, one key."""
    key = "KEYstartup0123456789abcdef"

    async def start(context: Any) -> str:
        await prepare(context)
        return "ready"

    async def setup_round() -> list[Any]:
        contexts = [build_context(make_settings(empty_db_url, api_key=key)) for _ in range(4)]
        try:
            return await asyncio.gather(*(start(c) for c in contexts), return_exceptions=True)
        finally:
            for c in contexts:
                await c.db.dispose()

    async def counts() -> tuple[int, int]:
        db = Database(empty_db_url)
        try:
            async with db.transaction() as uow:
                orgs = (
                    await uow.conn.execute(select(func.count()).select_from(organizations))
                ).scalar()
                keys = (await uow.conn.execute(select(func.count()).select_from(api_keys))).scalar()
                return int(orgs or 0), int(keys or 0)
        finally:
            await db.dispose()

    async def forget_organizations() -> None:
        db = Database(empty_db_url)
        try:
            async with db.transaction() as uow:
                await uow.conn.execute(delete(api_keys))
                await uow.conn.execute(delete(organizations))
        finally:
            await db.dispose()

    assert asyncio.run(setup_round()) == ["ready"] * 4  # from an empty database
    assert asyncio.run(counts()) == (1, 1)
    for _ in range(5):  # the bootstrap alone, on a migrated database, where the race was
        asyncio.run(forget_organizations())
        assert asyncio.run(setup_round()) == ["ready"] * 4
        assert asyncio.run(counts()) == (1, 1)
