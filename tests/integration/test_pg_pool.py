"""PostgreSQL connections the server closed are replaced when the pool hands them out, without
SQLAlchemy's pre-ping round trips on every checkout (kit.pgpool)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import pytest
from sqlalchemy import text

from signalpost.kit import pgpool
from signalpost.kit.db import Database
from tests.conftest import create_pg_database, drop_pg_database, pg_server_url

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_db() -> Iterator[str]:
    url, name = create_pg_database()
    yield url
    drop_pg_database(name)


async def backend_pid(db: Database) -> int:
    async with db.transaction() as uow:
        return int((await uow.conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def terminate(pid: int) -> None:
    """End the server process of a connection, and wait until it is gone."""
    admin = await asyncpg.connect(pg_server_url())
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
        for _ in range(500):
            gone = await admin.fetchval(
                "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $1", pid
            )
            if gone:
                break
            await asyncio.sleep(0.01)
    finally:
        await admin.close()


@pytest.mark.parametrize("idle_ping", [0.0, 3600.0])
def test_a_connection_the_server_closed_is_replaced_without_an_error(
    pg_db: str, idle_ping: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen closed (no ping needed: the idle ping is off for an hour), or failing its ping."""
    monkeypatch.setattr(pgpool, "IDLE_PING_SECONDS", idle_ping)

    async def go() -> None:
        db = Database(pg_db)
        try:
            first = await backend_pid(db)
            await terminate(first)
            # The pooled connection sees its socket close on the loop (a server that went away
            # while it sat in the pool); a close in the middle of a checkout is another matter.
            await asyncio.sleep(0.05)
            second = await backend_pid(db)  # must not raise
            assert second != first
        finally:
            await db.dispose()

    asyncio.run(go())
