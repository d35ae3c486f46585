"""Database access: one engine per process, explicit units of work, SQLite and PostgreSQL alike.

Services never commit. The caller opens a unit of work (`async with db.transaction() as uow`), passes
it down, and the unit commits when the block ends without an exception or rolls back otherwise. Jobs
enqueued inside it commit or vanish with it (transactional outbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import itertools
import sqlite3
import time
from collections import deque
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Hashable,
    Iterable,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    Insert,
    Table,
    Update,
    bindparam,
    create_engine,
    insert,
    update,
)
from sqlalchemy.engine import Connection, CursorResult, Dialect, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import Executable

from signalpost.kit import pgbulk, pgpool, sqlite, sqlitebulk
from signalpost.kit.compact import UTCDateTime as UTCDateTime  # migrations name it here

T = TypeVar("T")


def _json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _json_value(raw: Any) -> Any:
    # SQLite hands back a JSON column holding a bare number as that number (column affinity).
    return orjson.loads(raw) if isinstance(raw, str | bytes) else raw


# Due times `Database` remembers at most (beyond, workers poll as usual).
MAX_DUE_HINTS = 10_000


@functools.cache
def _insert(table: Table) -> Insert:
    return insert(table)


@functools.cache
def _dependency_rank(table: Table) -> int:
    return table.metadata.sorted_tables.index(table)


Match = sqlitebulk.Match  # `Conn.update_many`'s match


@functools.lru_cache(maxsize=256)
def _update_statement(table: Table, match: Match) -> Update:
    return update(table).where(*(table.c[column] == bindparam(key) for key, column in match))


# At most this many values in one `IN (…)` of `Conn.rows_where_in`.
MAX_IN = 500


class Conn:
    """The connection of a unit of work: `await conn.execute(statement)` on either backend.

    PostgreSQL goes through asyncpg. SQLite statements run on the event loop's own thread: they take
    microseconds, while handing each one to a driver thread (aiosqlite) and back costs far more than
    the statement itself, and the process holds SQLite's single write lock for that whole time.
    """

    def __init__(
        self, async_conn: AsyncConnection | None = None, sync_conn: Connection | None = None
    ) -> None:
        self._async = async_conn
        self._sync = sync_conn

    @property
    def dialect(self) -> Dialect:
        if self._sync is not None:
            return self._sync.dialect
        assert self._async is not None
        return self._async.dialect

    async def run_sync(self, fn: Callable[[Connection], T]) -> T:
        """`fn(connection)` on the synchronous SQLAlchemy connection of this unit of work (Alembic)."""
        if self._sync is not None:
            return fn(self._sync)
        assert self._async is not None
        return await self._async.run_sync(fn)

    async def execute(
        self, statement: Executable, parameters: Any = None
    ) -> CursorResult[*tuple[Any, ...]]:
        if self._sync is not None:
            return self._sync.execute(statement, parameters)
        assert self._async is not None
        return await self._async.execute(statement, parameters)

    async def rows_where_in(
        self, table: Table, column: str, values: Sequence[Any], *, for_update: bool = False
    ) -> list[dict[str, Any]]:
        """The rows of `table` whose `column` is one of `values`, every column, as dicts; with
        `for_update`, locked until the transaction ends (SQLite: its single writer lock is).

        Straight through the driver, with each column's result processor: reading whole rows
        through SQLAlchemy's result machinery costs several times the query itself."""
        if self._sync is None:
            assert self._async is not None
            sql, bind, out = pgbulk.select_plan(table, column, for_update, self.dialect)
            arg = [bind(v) for v in values] if bind else list(values)
            records = await pgbulk.run(self._async, sql, [arg], fetch=True)
            return [
                {k: p(v) if p is not None else v for (k, p), v in zip(out, r, strict=True)}
                for r in records
            ]
        sql, key, columns = sqlitebulk.select_plan(table, column, self._sync.dialect)
        rows: list[dict[str, Any]] = []
        cursor = self._sync.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            for start in range(0, len(values), MAX_IN):
                chunk = [key(v) if key else v for v in values[start : start + MAX_IN]]
                cursor.execute(sql + ", ".join("?" * len(chunk)) + ")", chunk)
                for raw in cursor.fetchall():
                    rows.append(
                        {
                            k: p(v) if p is not None else v
                            for (k, p), v in zip(columns, raw, strict=True)
                        }
                    )
        finally:
            cursor.close()
        return rows

    async def update_many(
        self, table: Table, match: Match, rows: Sequence[Mapping[str, Any]]
    ) -> int:
        """Update one row per parameter set, all with the same keys: the row whose `match` columns
        equal those parameters gets the other keys as column values. Returns the rows changed.

        On SQLite straight through the driver's `executemany` (see `insert_many`); on PostgreSQL
        one statement from arrays (kit.pgbulk)."""
        if not rows:
            return 0
        plan = None
        if self._sync is not None:
            plan = sqlitebulk.update_plan(table, tuple(rows[0]), match, self._sync.dialect)
        else:
            pg = pgbulk.update_plan(table, tuple(rows[0]), match, self.dialect)
            if pg is not None:
                assert self._async is not None
                changed = 0
                for part in pgbulk.distinct_runs(rows, [k for k, _ in match]):
                    args = pgbulk.columns_of(part, pg[1])
                    status = await pgbulk.run(self._async, pg[0], args, fetch=False)
                    changed += pgbulk.rowcount(status)
                return changed
        if plan is None:
            result = await self.execute(_update_statement(table, match), list(rows))
            return int(result.rowcount)
        sql, order = plan
        return self._driver_executemany(sql, order, rows)

    async def insert_many(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert rows of plain values (no SQL expressions).

        On SQLite straight through the driver's `executemany`, with the columns' own bind
        processors: SQLAlchemy's per-row parameter handling costs several times the insert itself,
        and group commits insert hundreds of rows at a time. On PostgreSQL one statement per
        shape of row, from arrays (kit.pgbulk).
        """
        if not rows:
            return
        shapes: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
        for row in rows:
            shapes.setdefault(tuple(row), []).append(row)
        if self._sync is None:
            for keys, group in shapes.items():
                await self._pg_insert(table, keys, group)
            return
        for keys, group in shapes.items():
            plan = sqlitebulk.insert_plan(table, keys, self._sync.dialect)
            if plan is None:
                self._sync.execute(_insert(table), group)
            else:
                sql, given, constants = plan
                self._driver_executemany(sql, given, group, constants)

    async def _pg_insert(
        self, table: Table, keys: tuple[str, ...], rows: Sequence[Mapping[str, Any]]
    ) -> None:
        assert self._async is not None
        plan = pgbulk.insert_plan(table, keys, self.dialect)
        if plan is None:
            await self.execute(_insert(table), list(rows))
            return
        sql, given, constants = plan
        args = [*pgbulk.columns_of(rows, given), *constants]
        await pgbulk.run(self._async, sql, args, fetch=False)

    def _driver_executemany(
        self,
        sql: str,
        params: Sequence[tuple[str, sqlitebulk.Processor]],
        rows: Sequence[Mapping[str, Any]],
        constants: Sequence[Any] = (),
    ) -> int:
        """Run `sql` once per row on the SQLite driver, the row's values for `params` (each through
        its bind processor) followed by `constants`; returns the rows changed."""
        assert self._sync is not None
        tail = list(constants)
        values = [
            [p(row[k]) if p is not None else row[k] for k, p in params] + tail for row in rows
        ]
        cursor = self._sync.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(sql, values)
            return int(cursor.rowcount)
        except sqlite3.IntegrityError as exc:  # as SQLAlchemy would raise it
            raise IntegrityError(sql, None, exc) from exc
        finally:
            cursor.close()


class UnitOfWork:
    """One database transaction plus what must happen after it commits."""

    def __init__(self, conn: Conn, db: Database) -> None:
        self.conn = conn
        self.db = db
        self._after_commit: list[Callable[[], Awaitable[None] | None]] = []
        # Whether this transaction queued jobs (or made some due), and of which kinds (None: it
        # may be any): the workers of their lanes wake when it commits (see `wake`).
        self.jobs_enqueued = 0
        self.queued_kinds: set[str] | None = set()
        # Reads memoised for the length of this transaction (see `memo`).
        self.cache: dict[Hashable, Any] = {}
        # The earliest future `run_at` (Unix seconds) of the jobs this transaction queued.
        self.next_due: float | None = None
        self._deferred: dict[Table, list[Mapping[str, Any]]] = {}
        self._before_flush: list[Callable[[], Awaitable[None]]] = []

    def wake(self, kinds: Iterable[str] | None = None) -> None:
        """Jobs of `kinds` (None: of any kind) are due once this transaction commits: wake the
        idle workers of their lanes then (`Database.jobs_queued`)."""
        self.jobs_enqueued += 1
        if kinds is None:
            self.queued_kinds = None
        elif self.queued_kinds is not None:
            self.queued_kinds.update(kinds)

    def note_due(self, run_at: datetime) -> None:
        """A job this transaction queues becomes due at `run_at` (see `Database.note_due`)."""
        at = run_at.timestamp()
        if at > time.time() and (self.next_due is None or at < self.next_due):
            self.next_due = at

    def defer_insert(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert `rows` when the unit of work ends, in one statement with every other deferred
        row of `table` (group commit: the rows of all the requests sharing the transaction).

        Only for rows nothing reads or changes later in the same transaction.
        """
        self._deferred.setdefault(table, []).extend(rows)

    def before_flush(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Run `fn` when the unit of work ends, before the deferred rows are inserted (it may defer
        more): for work gathered across the whole transaction, such as one job for many items."""
        self._before_flush.append(fn)

    async def flush(self) -> None:
        """Insert the deferred rows now: parent tables before the tables referring to them."""
        while self._before_flush:
            hooks, self._before_flush = self._before_flush, []
            for fn in hooks:
                await fn()
        while self._deferred:
            pending, self._deferred = self._deferred, {}
            for table in sorted(pending, key=_dependency_rank):
                await self.conn.insert_many(table, pending[table])

    async def memo(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        """`load()`'s result, read once per transaction: for rows this transaction does not change
        (a sender's number and profile, looked up again by every message of a group commit)."""
        try:
            value: T = self.cache[key]
        except KeyError:
            value = self.cache[key] = await load()
        return value

    def after_commit(self, fn: Callable[[], Awaitable[None] | None]) -> None:
        self._after_commit.append(fn)

    async def _run_after_commit(self) -> None:
        for fn in self._after_commit:
            result = fn()
            if result is not None:
                await result


# Whether the running task does background work (the job workers set it): on SQLite, the API's
# transactions and background ones take turns at the writer (see `WriteTurns`).
background_work: ContextVar[bool] = ContextVar("background_work", default=False)


class WriteTurns:
    """Whose turn it is at SQLite's single writer in this process: an asyncio lock, fair between
    the API and background work.

    With a plain first-come lock, a request whose group commit arrives behind the transactions of
    a few large job batches waits for all of them: seconds, under load. Here each class waits in
    its own line (API transactions: `background_work` unset), and when both have waiters they take
    turns. A request then waits behind at most one background transaction, and background work
    keeps moving under any load of requests.
    """

    def __init__(self) -> None:
        self._held = False
        self._api: deque[asyncio.Future[None]] = deque()
        self._background: deque[asyncio.Future[None]] = deque()
        self._background_last = False  # whether the current (or last) turn is background work's

    @property
    def held(self) -> bool:
        return self._held

    async def acquire(self) -> None:
        background = background_work.get()
        if not self._held:
            self._held = True
            self._background_last = background
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._background if background else self._api
        queue.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the turn was handed over just now: pass it on
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(future)
            raise

    def release(self) -> None:
        """End this turn: hand the writer straight to the next waiter, if any."""
        while self._api or self._background:
            background = bool(self._background) and (not self._api or not self._background_last)
            future = (self._background if background else self._api).popleft()
            if future.done():  # its task was cancelled while waiting
                continue
            self._background_last = background
            future.set_result(None)
            return
        self._held = False


def async_url(url: str) -> str:
    """Accept plain `postgresql://` and `sqlite://` URLs and pick the async drivers."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite://") and "+aiosqlite" not in url:
        return "sqlite+aiosqlite://" + url.split("://", 1)[1]
    return url


class Database:
    """The engine, a job-arrival signal for in-process workers, and SQLite write serialization."""

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        listen_url: str | None = None,
        transaction_pooler: bool = False,
    ) -> None:
        self.url = async_url(url)
        # Where workers LISTEN for queued jobs (PostgreSQL; kit.queue.notify): the database itself,
        # when `url` goes through a transaction-mode pooler.
        self.listen_url = async_url(listen_url or url)
        self.is_sqlite = self.url.startswith("sqlite")
        # JSON columns through orjson: the standard library's encoder is a visible share of a send.
        kwargs: dict[str, Any] = {
            "echo": echo,
            "json_serializer": _json_text,
            "json_deserializer": _json_value,
        }
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
        else:
            # Connections are kept (opening one costs a handshake, a few ms of CPU) up to what a
            # busy process holds at once: a group commit, claims, and a few batches in flight.
            kwargs.update(pool_size=16, max_overflow=16)
            if transaction_pooler:
                kwargs["connect_args"] = pgpool.pooler_connect_args()
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if not self.is_sqlite:
            pgpool.check_on_checkout(self.engine.sync_engine)
            pgpool.prime_types(self.engine.sync_engine)
        # SQLite allows one writer; serialize this process's transactions so they queue in memory
        # instead of failing with "database is locked". Other processes wait on busy_timeout.
        self._lock = WriteTurns() if self.is_sqlite else None
        # Set when this process queued jobs (or made some due): the workers of each lane wait on
        # their own event (see `jobs_signal`).
        self._job_signals: dict[str, asyncio.Event] = {}
        self._lane_kinds: dict[str, frozenset[str]] = {}  # the job kinds each lane's workers run
        # When jobs queued for later (by this process, or announced by others) become due: a heap
        # of (Unix seconds, a sequence number, their kinds or None), and one timer, for the first of
        # them, that wakes the workers of their lanes then (`note_due`).
        self._due: list[tuple[float, int, frozenset[str] | None]] = []
        self._due_seq = itertools.count()
        self._due_timer: asyncio.TimerHandle | None = None
        self._due_timer_at = 0.0
        self.sync_engine: Engine | None = None
        if self.is_sqlite:
            sqlite.configure_sqlite(self.engine.sync_engine, busy_timeout_ms=30_000)
            # The units of work: on the event loop's thread, never waiting in the driver (see
            # `kit.sqlite.begin_immediate`).
            self.sync_engine = create_engine(
                self.url.replace("+aiosqlite", "", 1),
                echo=echo,
                json_serializer=_json_text,
                json_deserializer=_json_value,
                connect_args={"timeout": 0, "check_same_thread": False},
            )
            sqlite.configure_sqlite(self.sync_engine, busy_timeout_ms=0)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[UnitOfWork]:
        """A unit of work: commits at the end of the block, rolls back on an exception."""
        if self._lock is not None:
            await self._lock.acquire()
        try:
            if self.sync_engine is not None:
                with self.sync_engine.connect() as sconn:
                    await sqlite.begin_immediate(sconn)
                    with sconn.begin():
                        uow = UnitOfWork(Conn(sync_conn=sconn), self)
                        yield uow
                        await uow.flush()
            else:
                async with self.engine.connect() as conn, conn.begin():
                    uow = UnitOfWork(Conn(async_conn=conn), self)
                    yield uow
                    await uow.flush()
        finally:
            if self._lock is not None:
                self._lock.release()
        if uow.jobs_enqueued:
            self.jobs_queued(uow.queued_kinds)
        if uow.next_due is not None:
            self.note_due(uow.next_due, uow.queued_kinds)
        await uow._run_after_commit()

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[UnitOfWork]:
        """A unit of work for reads only, outside the write turns (as `read`, for the async
        repository code): pages and feeds that only read never wait for, or hold up, writes.

        On SQLite the transaction is deferred and takes no write lock; on PostgreSQL it is
        `READ ONLY`. Nothing is committed: a write in it fails (PostgreSQL) or is rolled back.
        """
        if self.sync_engine is not None:
            reader = self.sync_engine.connect().execution_options(**{sqlite.READ_ONLY: True})
            with reader as sconn:
                begun = sconn.begin()
                try:
                    yield UnitOfWork(Conn(sync_conn=sconn), self)
                finally:
                    begun.rollback()
            return
        async with self.engine.connect() as conn:
            readonly = await conn.execution_options(postgresql_readonly=True)
            transaction = await readonly.begin()
            try:
                yield UnitOfWork(Conn(async_conn=readonly), self)
            finally:
                await transaction.rollback()

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """`fn(connection)` in a read-only transaction of its own, outside the write turns.

        On SQLite the transaction is deferred: it never takes the write lock, and in WAL mode a
        reader waits for no writer, so it runs on the event loop's thread like a unit of work.
        """
        if self.sync_engine is not None:
            reader = self.sync_engine.connect().execution_options(**{sqlite.READ_ONLY: True})
            with reader as sconn, sconn.begin():
                return fn(sconn)
        async with self.engine.connect() as conn:
            return await conn.run_sync(fn)

    def jobs_signal(self, lane: str = "default", kinds: Iterable[str] = ()) -> asyncio.Event:
        """The event the workers of `lane` wait on for jobs this process queued; `kinds`, those
        they run (only jobs of these kinds wake them; none given: jobs of any kind)."""
        signal = self._job_signals.get(lane)
        if signal is None:
            signal = self._job_signals[lane] = asyncio.Event()
        self._lane_kinds[lane] = self._lane_kinds.get(lane, frozenset()) | frozenset(kinds)
        return signal

    def jobs_queued(self, kinds: Collection[str] | None = None) -> None:
        """Wake the idle workers of the lanes that run jobs of `kinds` (None: of every lane):
        jobs of these kinds were queued (or made due). A lane woken for nothing costs an empty
        claim, a database round trip per worker."""
        for lane, signal in self._job_signals.items():
            runs = self._lane_kinds.get(lane)
            if kinds is None or not runs or not runs.isdisjoint(kinds):
                signal.set()

    def note_due(self, at: float, kinds: Collection[str] | None = None) -> None:
        """Jobs of `kinds` (None: of any kind) become due at `at` (Unix seconds): the idle workers of
        their lanes are woken then (`jobs_queued`), at once if that time has passed.

        A timer wakes them; workers do not work the time out themselves. A worker that did, after
        a claim that began before the jobs were due and ended after (it waited for the database),
        would find the time passed and the claim empty, and sleep until its next poll."""
        if at <= time.time():
            self.jobs_queued(kinds)
            return
        if len(self._due) >= MAX_DUE_HINTS:
            return  # beyond, the workers' polls find them
        frozen = None if kinds is None else frozenset(kinds)
        heapq.heappush(self._due, (at, next(self._due_seq), frozen))
        self._arm_due()

    def _arm_due(self) -> None:
        now = time.time()
        while self._due and self._due[0][0] <= now:
            self.jobs_queued(heapq.heappop(self._due)[2])
        if not self._due:
            return
        first = self._due[0][0]
        if self._due_timer is not None:
            if self._due_timer_at <= first:
                return  # it fires first, and arms the next
            self._due_timer.cancel()
        self._due_timer_at = first
        # (A millisecond late: the timer's clock and `time.time()` need not agree to the microsecond;
        # one that fires early arms again for the rest.)
        self._due_timer = asyncio.get_running_loop().call_later(
            first - now + 0.001, self._due_fired
        )

    def _due_fired(self) -> None:
        self._due_timer = None
        self._arm_due()

    async def dispose(self) -> None:
        if self._due_timer is not None:
            self._due_timer.cancel()
            self._due_timer = None
        await self.engine.dispose()
        if self.sync_engine is not None:
            self.sync_engine.dispose()
