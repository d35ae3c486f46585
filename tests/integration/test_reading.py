"""`Database.reading()`: a unit of work for reads only, outside the write turns. It sees what is
committed, never waits for a writer (SQLite: another connection holding the write lock; the
server's own write turns), and commits nothing."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path

import pytest
import telnyx
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from signalpost.accounts import service as accounts
from signalpost.kit import migrate
from signalpost.kit.db import Database
from tests.conftest import sdk_client
from tests.conftest import test_settings as make_settings
from tests.support.server import RunningServer


async def _count(db: Database) -> int:
    async with db.reading() as uow:
        return int(
            (await uow.conn.execute(text("SELECT count(*) FROM organizations"))).scalar_one()
        )


def test_reads_wait_for_no_writer_and_commit_nothing(database_url: str) -> None:
    async def go() -> None:
        db = Database(database_url)
        try:
            await migrate.upgrade(db)
            before = await _count(db)
            async with db.transaction() as uow:  # the server's own write turn, held meanwhile
                await accounts.create_organization(uow, "reading")
                # not committed yet: a reader neither waits for it nor sees it
                assert await asyncio.wait_for(_count(db), 2) == before
            assert await _count(db) == before + 1

            if db.is_sqlite:  # another process holding the write lock
                writer = sqlite3.connect(database_url.split(":///", 1)[1], isolation_level=None)
                writer.execute("BEGIN IMMEDIATE")
                try:
                    assert await asyncio.wait_for(_count(db), 2) == before + 1
                finally:
                    writer.execute("ROLLBACK")
                    writer.close()

            # What is written in it is not kept (PostgreSQL refuses it: READ ONLY).
            refused: DBAPIError | None = None
            try:
                async with db.reading() as uow:
                    await uow.conn.execute(text("DELETE FROM organizations WHERE name = 'reading'"))
            except DBAPIError as exc:
                refused = exc
            if db.is_sqlite:
                assert refused is None
            else:
                assert refused is not None and "read-only" in str(refused)
            assert await _count(db) == before + 1
        finally:
            await db.dispose()

    asyncio.run(go())


def test_api_reads_answer_while_another_process_holds_the_sqlite_write_lock(
    tmp_path: Path,
) -> None:
    """The API's GET routes and the API key lookup only read, outside the write turns: while
    another connection holds SQLite's write lock, they still answer at once (in units of work
    each waited for that lock, behind every send queued meanwhile)."""
    path = tmp_path / "reads.db"
    server = RunningServer(make_settings(f"sqlite+aiosqlite:///{path}")).start()
    try:
        _, key = server.new_organization("api-reads")
        client = sdk_client(server, key).with_options(timeout=5)
        profile = client.messaging_profiles.create(name="reads", whitelisted_destinations=["US"])
        server.ctx.extras.get("auth_cache", {}).clear()  # the key is looked up again
        writer = sqlite3.connect(path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        try:
            listed = client.messaging_profiles.list()
            retrieved = client.messaging_profiles.retrieve(profile.data.id)
            numbers = client.phone_numbers.list()
            optouts = client.messaging_optouts.list()
            with pytest.raises(telnyx.NotFoundError):
                client.messages.retrieve(str(uuid.uuid4()))
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        assert [p.id for p in listed.data] == [profile.data.id]
        assert retrieved.data.name == "reads"
        assert numbers.data == [] and optouts.data == []
    finally:
        server.stop()
