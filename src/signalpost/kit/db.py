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
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    DateTime,
    Insert,
    Table,
    Update,
    bindparam,
    create_engine,
    event,
    insert,
    update,
)
from sqlalchemy.engine import Connection, CursorResult, Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import Executable
from sqlalchemy.types import TypeDecorator

from signalpost.kit import packed

T = TypeVar("T")


def _json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _json_value(raw: Any) -> Any:
    # SQLite hands back a JSON column holding a bare number as that number (column affinity).
    return orjson.loads(raw) if isinstance(raw, str | bytes) else raw


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

    # SQLite keeps datetimes as text, `YYYY-MM-DD HH:MM:SS.ffffff` (the form SQLAlchemy's SQLite
    # dialect writes, and compares as strings). The dialect's own conversion goes through string
    # templates and a regular expression per value; these do the same with `isoformat` and
    # `fromisoformat` at a fraction of the cost, which shows on every row a message touches.

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # One entry of memory (replaced whole, so threads never see half of one): a batch binds
        # the same `now` object into every one of its rows.
        last: list[tuple[datetime | None, str]] = [(None, "")]

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            memo = last[0]
            if value is memo[0]:
                return memo[1]
            if value.tzinfo is UTC:  # the usual case: the offset is cut off the text
                text = value.isoformat(sep=" ", timespec="microseconds")[:-6]
            else:
                naive = value.astimezone(UTC) if value.tzinfo and value.utcoffset() else value
                text = naive.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
            last[0] = (value, text)
            return text

        return process

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        # The rows of a batch share their timestamps (written from one `now`): one entry of memory
        # for the last text read, as for binding.
        last: list[tuple[str | None, datetime | None]] = [(None, None)]

        def process(value: str | datetime | None) -> datetime | None:
            if value is None:
                return None
            if isinstance(value, str):
                memo = last[0]
                if value == memo[0]:
                    return memo[1]
                if len(value) in (19, 26):  # naive, as stored: read as UTC straight away
                    parsed = datetime.fromisoformat(value + "+00:00")
                else:
                    parsed = datetime.fromisoformat(value)
                    parsed = (
                        parsed.replace(tzinfo=UTC)
                        if parsed.tzinfo is None
                        else parsed.astimezone(UTC)
                    )
                last[0] = (value, parsed)
                return parsed
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

        return process


# Due times `Database` remembers at most (beyond, workers poll as usual).
MAX_DUE_HINTS = 10_000


@functools.cache
def _insert(table: Table) -> Insert:
    return insert(table)


@functools.cache
def _dependency_rank(table: Table) -> int:
    return table.metadata.sorted_tables.index(table)


_Processor = Callable[[Any], Any] | None


@functools.lru_cache(maxsize=256)
def _sqlite_insert_plan(
    table: Table, keys: tuple[str, ...], dialect: Dialect
) -> tuple[str, list[tuple[str, _Processor]], list[Any]] | None:
    """The SQL of a bulk insert of rows with these keys, each key's bind processor, and the values
    of the other columns with a constant default (as SQLAlchemy would fill them in); None when a
    key is no column or a column left out has another kind of default (then SQLAlchemy inserts)."""
    given: list[tuple[str, _Processor]] = []
    constants: list[Any] = []
    columns: list[str] = []
    defaulted: list[str] = []
    quote = dialect.identifier_preparer
    for column in table.c:
        processor = column.type._cached_bind_processor(dialect)
        if column.key in keys:
            given.append((column.key, processor))
            columns.append(quote.format_column(column))
        elif column.default is not None:
            if not column.default.is_scalar:
                return None
            value = column.default.arg  # type: ignore[attr-defined]
            constants.append(processor(value) if processor else value)
            defaulted.append(quote.format_column(column))
    if len(given) != len(keys):
        return None
    names = columns + defaulted
    sql = (
        f"INSERT INTO {quote.format_table(table)} ({', '.join(names)}) "
        f"VALUES ({', '.join('?' * len(names))})"
    )
    return sql, given, constants


# `Conn.update_many`'s match: (parameter key, column name) pairs, compared for equality.
Match = tuple[tuple[str, str], ...]


@functools.lru_cache(maxsize=256)
def _update_statement(table: Table, match: Match) -> Update:
    return update(table).where(*(table.c[column] == bindparam(key) for key, column in match))


@functools.lru_cache(maxsize=256)
def _sqlite_update_plan(
    table: Table, keys: tuple[str, ...], match: Match, dialect: Dialect
) -> tuple[str, list[tuple[str, _Processor]]] | None:
    """The SQL of an update setting the columns named by `keys` (less the match keys) where the
    match columns equal their parameters, and the bind processor of each parameter in order."""
    quote = dialect.identifier_preparer
    matched = {key for key, _ in match}
    sets = [k for k in keys if k not in matched]
    if not sets or any(k not in table.c for k in sets) or not matched <= set(keys):
        return None
    order = [(k, table.c[k]) for k in sets] + [(key, table.c[col]) for key, col in match]
    sql = (
        f"UPDATE {quote.format_table(table)} SET "
        + ", ".join(f"{quote.format_column(table.c[k])} = ?" for k in sets)
        + " WHERE "
        + " AND ".join(f"{quote.format_column(table.c[col])} = ?" for _, col in match)
    )
    return sql, [(k, c.type._cached_bind_processor(dialect)) for k, c in order]


@functools.lru_cache(maxsize=64)
def _sqlite_select_plan(
    table: Table, column: str, dialect: Dialect
) -> tuple[str, _Processor, list[tuple[str, _Processor]]]:
    """`SELECT` every column of `table` `WHERE column IN (`, the key's bind processor, and each
    column's key and result processor, in order."""
    quote = dialect.identifier_preparer
    sql = (
        f"SELECT {', '.join(quote.format_column(c) for c in table.c)} "
        f"FROM {quote.format_table(table)} WHERE {quote.format_column(table.c[column])} IN ("
    )
    key = table.c[column].type._cached_bind_processor(dialect)
    return sql, key, [(c.key, c.type._cached_result_processor(dialect, None)) for c in table.c]


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

    async def execute(
        self, statement: Executable, parameters: Any = None
    ) -> CursorResult[*tuple[Any, ...]]:
        if self._sync is not None:
            return self._sync.execute(statement, parameters)
        assert self._async is not None
        return await self._async.execute(statement, parameters)

    async def rows_where_in(
        self, table: Table, column: str, values: Sequence[Any]
    ) -> list[dict[str, Any]] | None:
        """On SQLite, the rows of `table` whose `column` is one of `values`, every column, as
        dicts; None on other backends (the caller runs its own statement, with its locks).

        Straight through the driver, with each column's result processor: reading whole rows
        through SQLAlchemy's result machinery costs several times the query itself."""
        if self._sync is None:
            return None
        sql, key, columns = _sqlite_select_plan(table, column, self._sync.dialect)
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

        On SQLite straight through the driver's `executemany` (see `insert_many`)."""
        if not rows:
            return 0
        plan = None
        if self._sync is not None:
            plan = _sqlite_update_plan(table, tuple(rows[0]), match, self._sync.dialect)
        if plan is None:
            result = await self.execute(_update_statement(table, match), list(rows))
            return int(result.rowcount)
        sql, order = plan
        return self._driver_executemany(sql, order, rows)

    async def insert_many(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert rows of plain values (no SQL expressions).

        On SQLite straight through the driver's `executemany`, with the columns' own bind
        processors: SQLAlchemy's per-row parameter handling costs several times the insert itself,
        and group commits insert hundreds of rows at a time.
        """
        if self._sync is None or not rows:
            await self.execute(_insert(table), list(rows))
            return
        shapes: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
        for row in rows:
            shapes.setdefault(tuple(row), []).append(row)
        for keys, group in shapes.items():
            plan = _sqlite_insert_plan(table, keys, self._sync.dialect)
            if plan is None:
                self._sync.execute(_insert(table), group)
            else:
                sql, given, constants = plan
                self._driver_executemany(sql, given, group, constants)

    def _driver_executemany(
        self,
        sql: str,
        params: Sequence[tuple[str, _Processor]],
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
        finally:
            cursor.close()


class UnitOfWork:
    """One database transaction plus what must happen after it commits."""

    def __init__(self, conn: Conn, db: Database) -> None:
        self.conn = conn
        self.db = db
        self._after_commit: list[Callable[[], Awaitable[None] | None]] = []
        self.jobs_enqueued = 0
        # Reads memoised for the length of this transaction (see `memo`).
        self.cache: dict[Hashable, Any] = {}
        # The earliest future `run_at` (Unix seconds) of the jobs this transaction queued.
        self.next_due: float | None = None
        self._deferred: dict[Table, list[Mapping[str, Any]]] = {}
        self._before_flush: list[Callable[[], Awaitable[None]]] = []

    def note_due(self, run_at: datetime) -> None:
        """A job this transaction queues becomes due at `run_at` (see `Database.seconds_to_due`)."""
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

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = async_url(url)
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
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        # SQLite allows one writer; serialize this process's transactions so they queue in memory
        # instead of failing with "database is locked". Other processes wait on busy_timeout.
        self._lock = WriteTurns() if self.is_sqlite else None
        self.jobs_available = asyncio.Event()
        # When jobs queued by this process for later become due (a heap of Unix seconds): an idle
        # worker sleeps until the first of them, not a whole poll interval.
        self._due: list[float] = []
        self.sync_engine: Engine | None = None
        if self.is_sqlite:
            _configure_sqlite(self.engine.sync_engine)
            self.sync_engine = create_engine(
                self.url.replace("+aiosqlite", "", 1),
                echo=echo,
                json_serializer=_json_text,
                json_deserializer=_json_value,
                connect_args={"timeout": 30, "check_same_thread": False},
            )
            _configure_sqlite(self.sync_engine)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[UnitOfWork]:
        """A unit of work: commits at the end of the block, rolls back on an exception."""
        if self._lock is not None:
            await self._lock.acquire()
        try:
            if self.sync_engine is not None:
                with self.sync_engine.connect() as sconn, sconn.begin():
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
            self.jobs_available.set()
        if uow.next_due is not None and len(self._due) < MAX_DUE_HINTS:
            heapq.heappush(self._due, uow.next_due)
        await uow._run_after_commit()

    def seconds_to_due(self) -> float | None:
        """Seconds until the next job this process queued for later is due, if it knows of one."""
        now = time.time()
        while self._due and self._due[0] <= now:
            heapq.heappop(self._due)
        return self._due[0] - now if self._due else None

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.sync_engine is not None:
            self.sync_engine.dispose()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from the driver so BEGIN IMMEDIATE can be issued below.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        # Takes effect on a database still empty (before the first table), so every database this
        # server creates can give the space of purged rows back (`PRAGMA incremental_vacuum`).
        cur.execute("PRAGMA auto_vacuum=INCREMENTAL")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()
        dbapi_conn.create_function(packed.SQL_FUNCTION, 1, packed.sqlite_unpack, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
