"""Database access: one engine per process, explicit units of work, SQLite and PostgreSQL alike.

Services never commit. The caller opens a unit of work (`async with db.transaction() as uow`), passes
it down, and the unit commits when the block ends without an exception or rolls back otherwise. Jobs
enqueued inside it commit or vanish with it (transactional outbox).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class UnitOfWork:
    """One database transaction plus what must happen after it commits."""

    def __init__(self, conn: AsyncConnection, db: Database) -> None:
        self.conn = conn
        self.db = db
        self._after_commit: list[Callable[[], Awaitable[None] | None]] = []
        self.jobs_enqueued = 0

    def after_commit(self, fn: Callable[[], Awaitable[None] | None]) -> None:
        self._after_commit.append(fn)

    async def _run_after_commit(self) -> None:
        for fn in self._after_commit:
            result = fn()
            if result is not None:
                await result


def async_url(url: str) -> str:
    """Accept plain `postgresql://` and `sqlite://` URLs and pick the async drivers."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite://") and "+aiosqlite" not in url:
        return "sqlite+aiosqlite://" + url.split("://", 1)[1]
    return url


class Database:
    """The engine, a job-arrival signal for in-process workers, and SQLite write serialization."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = async_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        # SQLite allows one writer; serialize this process's transactions so they queue in memory
        # instead of failing with "database is locked". Other processes wait on busy_timeout.
        self._lock = asyncio.Lock() if self.is_sqlite else None
        self.jobs_available = asyncio.Event()
        if self.is_sqlite:
            _configure_sqlite(self.engine)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[UnitOfWork]:
        """A unit of work: commits at the end of the block, rolls back on an exception."""
        if self._lock is not None:
            await self._lock.acquire()
        try:
            async with self.engine.connect() as conn, conn.begin():
                uow = UnitOfWork(conn, self)
                yield uow
        finally:
            if self._lock is not None:
                self._lock.release()
        if uow.jobs_enqueued:
            self.jobs_available.set()
        await uow._run_after_commit()

    async def dispose(self) -> None:
        await self.engine.dispose()


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from the driver so BEGIN IMMEDIATE can be issued below.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
