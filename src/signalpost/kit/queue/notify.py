"""Wake-ups across processes on PostgreSQL: `NOTIFY` when jobs are queued, `LISTEN` in workers.

A transaction that queues jobs sends one notification on `CHANNEL` (delivered when it commits, not
at all if it rolls back) whose payload is the earliest `run_at` of its jobs, in Unix seconds, the
sending process's id (a process skips its own notifications: its workers heard already) and the
jobs' kinds. Each worker process keeps one connection listening: a notification of due jobs wakes
the workers of the lanes that run those kinds at once (`Database.jobs_queued`; the others would
only claim nothing), one of jobs due later wakes them when those are due.
So a job queued by an API process on another host starts within milliseconds, not after the
workers' next poll. Polling stays as the safety net: while the listening connection is up, an idle
worker polls every `listening_poll_interval` (a second, for jobs whose worker died); while it is
down (it reconnects), every `poll_interval`.

The listening connection goes straight to the database (`Database.listen_url`): behind PgBouncer in
transaction mode `LISTEN` does not work (`NOTIFY` does, so the API may go through it).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import weakref
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import make_url, text

from signalpost.kit.db import Database, UnitOfWork, async_url

log = logging.getLogger("signalpost.queue")

CHANNEL = "signalpost_jobs"
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")
_SLOT = ("queue.notify",)
# Reconnection delays of the listening connection (seconds), the last one repeated.
RECONNECT_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)


@dataclass
class _Announcement:
    """What one transaction announces: the earliest due time of its jobs and their kinds."""

    due: float
    kinds: set[str]


def announce(uow: UnitOfWork, due: float, kinds: Iterable[str]) -> None:
    """On PostgreSQL, notify the listening workers when `uow` commits that jobs of `kinds` are due
    at `due` (Unix seconds): one notification per transaction, with the earliest time announced
    in it and every kind."""
    if uow.db.is_sqlite:
        return
    found: _Announcement | None = uow.cache.get(_SLOT)
    if found is None:
        found = uow.cache[_SLOT] = _Announcement(due, set(kinds))
        uow.before_flush(functools.partial(_send, uow, found))
    else:
        found.due = min(found.due, due)
        found.kinds.update(kinds)


def _sender_id(db: Database) -> str:
    """Who sent a notification: a process's listener skips its own (its workers heard already)."""
    found = _senders.get(db)
    if found is None:
        found = _senders[db] = secrets.token_hex(6)
    return found


_senders: weakref.WeakKeyDictionary[Database, str] = weakref.WeakKeyDictionary()


async def _send(uow: UnitOfWork, found: _Announcement) -> None:
    payload = f"{found.due:.3f} {_sender_id(uow.db)} {','.join(sorted(found.kinds))}"
    await uow.conn.execute(_NOTIFY, {"channel": CHANNEL, "payload": payload})


def connect_kwargs(url: str) -> dict[str, Any]:
    """asyncpg's `connect()` arguments for a database URL (SQLAlchemy's own reading of it)."""
    from sqlalchemy.dialects.postgresql.asyncpg import dialect

    pg = dialect()  # type: ignore[no-untyped-call]
    _, kwargs = pg.create_connect_args(make_url(async_url(url)))  # type: ignore[no-untyped-call]
    for key in ("prepared_statement_cache_size", "prepared_statement_name_func"):
        kwargs.pop(key, None)
    return dict(kwargs)


class Listener:
    """One `LISTEN` connection for the workers of a process; reconnects when it is lost."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="job-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _on_notification(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        due_text, sender, kinds_text = [*payload.split(" ", 2), "", ""][:3]
        if sender == _sender_id(self.db):
            return  # queued by this process: its workers were told in-process (Database)
        try:
            due = float(due_text)
        except ValueError:
            due = 0.0
        # Wakes the lanes of those kinds now, or when they are due (no kinds named, as from an
        # older process: every lane looks).
        self.db.note_due(due, set(kinds_text.split(",")) if kinds_text else None)

    async def _run(self) -> None:
        failures = 0
        kwargs = connect_kwargs(self.db.listen_url)
        while True:
            lost = asyncio.Event()
            conn = None
            try:
                conn = await asyncpg.connect(**kwargs)
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, self._on_notification)
                failures = 0
                self.connected.set()
                # Jobs queued while no one listened: look once.
                self.db.jobs_queued()
                await lost.wait()
                log.warning("the job listener's connection was lost; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("the job listener cannot connect (%s); workers poll meanwhile", exc)
            finally:
                self.connected.clear()
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=2))
            await asyncio.sleep(RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)])
            failures += 1


_listening: dict[int, tuple[Listener, int]] = {}  # id(Database) -> (listener, users)


@contextlib.asynccontextmanager
async def listening(db: Database) -> AsyncIterator[Listener | None]:
    """While the block runs, the process listens for queued jobs on `db` (PostgreSQL only): one
    connection shared by all the workers of the process."""
    if db.is_sqlite:
        yield None
        return
    key = id(db)
    entry = _listening.get(key)
    if entry is None:
        listener = Listener(db)
        listener.start()
        _listening[key] = (listener, 1)
    else:
        listener = entry[0]
        _listening[key] = (listener, entry[1] + 1)
    try:
        yield listener
    finally:
        current, users = _listening[key]
        if users <= 1:
            del _listening[key]
            await current.stop()
        else:
            _listening[key] = (current, users - 1)
