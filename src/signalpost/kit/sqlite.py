"""SQLite connections: pragmas, and taking the write lock without blocking the event loop.

A process's units of work take turns at SQLite's single writer (`kit.db.WriteTurns`); these are the
pieces that make sure nothing waits for the lock in the driver, on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from signalpost.kit import compact, packed

# How long a unit of work waits for SQLite's write lock held by another process (a one-shot command,
# a test reading the file) before it fails, as the driver's `busy_timeout` would.
WRITE_LOCK_WAIT = 30.0
# Execution option of `Database.read`'s connections: a deferred transaction, no write lock.
READ_ONLY = "signalpost_read_only"


async def begin_immediate(sconn: Connection) -> None:
    """Take SQLite's write lock for the unit of work on `sconn` without blocking the event loop.

    The connections of the units of work run on the loop's thread with `busy_timeout` 0: a lock
    held by another process makes `BEGIN IMMEDIATE` fail at once, and the wait happens here, in
    short sleeps, while the loop goes on serving (the driver's busy wait would freeze it)."""
    dbapi = sconn.connection.dbapi_connection
    assert dbapi is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WRITE_LOCK_WAIT
    pause = 0.001
    while True:
        try:
            dbapi.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or loop.time() + pause > deadline:
                raise
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.05)


def configure_sqlite(engine: Engine, *, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from the driver so BEGIN IMMEDIATE can be issued below.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        # Takes effect on a database still empty (before the first table), so every database this
        # server creates can give the space of purged rows back (`PRAGMA incremental_vacuum`).
        # Only there: on a database in use, setting it would wait for a writer's lock.
        cur.execute("SELECT 1 FROM sqlite_master LIMIT 1")
        if cur.fetchone() is None:
            cur.execute("PRAGMA auto_vacuum=INCREMENTAL")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cur.close()
        dbapi_conn.create_function(packed.SQL_FUNCTION, 1, packed.sqlite_unpack, deterministic=True)
        dbapi_conn.create_function(packed.SQL_FUNCTION, 6, packed.sqlite_unpack, deterministic=True)
        dbapi_conn.create_function(
            compact.SQL_TEXT, 1, compact.sqlite_stored_text, deterministic=True
        )

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")  # deferred: reads only, never the write lock
            return
        dbapi = conn.connection.dbapi_connection
        if getattr(dbapi, "in_transaction", False):
            return  # `begin_immediate` took the lock already
        conn.exec_driver_sql("BEGIN IMMEDIATE")
