"""The durable job queue: a table in the same database as the business rows.

Enqueue inside the caller's unit of work, so a job exists exactly when the change that caused it
committed. Workers claim due jobs in batches (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: one short
write transaction), hold them under a lease, and either delete them (done), reschedule them
(retry with capped exponential backoff) or mark them `failed` (visible, never silently dropped).
A job whose worker died is claimed again when its lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, insert, or_, select, update
from sqlalchemy.engine import RowMapping

from signalpost.kit.clock import utcnow
from signalpost.kit.db import Database, UnitOfWork
from signalpost.models import jobs

log = logging.getLogger("signalpost.queue")


# --- retry policy ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay: float = 0.0


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff: `base * factor**(attempt-1)`, at most `cap`, `max_attempts` runs."""

    max_attempts: int = 5
    base: float = 1.0
    factor: float = 2.0
    cap: float = 300.0
    jitter: float = 0.0  # fraction of the delay removed at random (0 = deterministic)

    def decide(self, attempt: int, *, rng: random.Random | None = None) -> RetryDecision:
        """What to do after run number `attempt` (1-based) failed."""
        if attempt >= self.max_attempts:
            return RetryDecision(retry=False)
        delay = min(self.cap, self.base * self.factor ** (attempt - 1))
        if self.jitter:
            delay -= delay * self.jitter * (rng or random).random()
        return RetryDecision(retry=True, delay=delay)


class JobError(Exception):
    """A job failed in a way that may succeed later; retried per the policy."""


class PermanentJobError(Exception):
    """A job failed in a way that will not change by retrying; marked failed at once."""


class RetryLater(Exception):
    """Not a failure: run the job again after `delay` seconds without counting an attempt."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"retry in {delay:.3f}s")
        self.delay = delay


# --- enqueue -----------------------------------------------------------------------------------


async def enqueue(
    uow: UnitOfWork,
    kind: str,
    payload: Mapping[str, Any],
    *,
    run_at: datetime | None = None,
    delay: float = 0.0,
    max_attempts: int = 5,
    group_key: str | None = None,
) -> None:
    """Add a job in the caller's transaction."""
    await enqueue_many(
        uow,
        [
            dict(
                kind=kind,
                payload=payload,
                run_at=run_at,
                delay=delay,
                max_attempts=max_attempts,
                group_key=group_key,
            )
        ],
    )


async def enqueue_many(uow: UnitOfWork, specs: Sequence[Mapping[str, Any]]) -> None:
    if not specs:
        return
    now = utcnow()
    rows = []
    for s in specs:
        run_at = s.get("run_at") or (now + timedelta(seconds=float(s.get("delay") or 0.0)))
        rows.append(
            {
                "kind": s["kind"],
                "payload": dict(s["payload"]),
                "status": "queued",
                "attempts": 0,
                "max_attempts": int(s.get("max_attempts") or 5),
                "run_at": run_at,
                "group_key": s.get("group_key"),
                "created_at": now,
                "updated_at": now,
            }
        )
    await uow.conn.execute(insert(jobs), rows)
    uow.jobs_enqueued += len(rows)


# --- claiming and finishing -------------------------------------------------------------------


@dataclass
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int  # including this run
    max_attempts: int
    group_key: str | None

    @classmethod
    def from_row(cls, row: RowMapping) -> Job:
        return cls(
            id=row["id"],
            kind=row["kind"],
            payload=dict(row["payload"]),
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            group_key=row["group_key"],
        )


async def claim(db: Database, worker_id: str, limit: int, lease: float) -> list[Job]:
    """Claim up to `limit` due jobs for `worker_id`, leased for `lease` seconds."""
    now = utcnow()
    cand = jobs.alias("cand")
    earlier = jobs.alias("earlier")
    due = or_(
        and_(cand.c.status == "queued", cand.c.run_at <= now),
        and_(cand.c.status == "running", cand.c.locked_until < now),
    )
    # A job waits while an earlier job of its group is still pending (per-message webhook order).
    not_blocked = or_(
        cand.c.group_key.is_(None),
        ~exists()
        .where(
            earlier.c.group_key == cand.c.group_key,
            earlier.c.id < cand.c.id,
            earlier.c.status != "failed",
        )
        .correlate(cand),
    )
    candidates = (
        select(cand.c.id).where(due, not_blocked).order_by(cand.c.run_at, cand.c.id).limit(limit)
    )
    if not db.is_sqlite:
        candidates = candidates.with_for_update(skip_locked=True, of=cand)
    stmt = (
        update(jobs)
        .where(jobs.c.id.in_(candidates.scalar_subquery()))
        .values(
            status="running",
            locked_by=worker_id,
            locked_until=now + timedelta(seconds=lease),
            attempts=jobs.c.attempts + 1,
            updated_at=now,
        )
        .returning(*jobs.c)
    )
    async with db.transaction() as uow:
        rows = (await uow.conn.execute(stmt)).mappings().all()
    return sorted((Job.from_row(r) for r in rows), key=lambda j: j.id)


async def complete(uow: UnitOfWork, job: Job, worker_id: str) -> None:
    await uow.conn.execute(delete(jobs).where(jobs.c.id == job.id, jobs.c.locked_by == worker_id))


async def reschedule(
    uow: UnitOfWork,
    job: Job,
    worker_id: str,
    delay: float,
    error: str | None,
    *,
    count: bool = True,
) -> None:
    now = utcnow()
    values: dict[str, Any] = {
        "status": "queued",
        "run_at": now + timedelta(seconds=delay),
        "locked_by": None,
        "locked_until": None,
        "updated_at": now,
    }
    if error is not None:
        values["last_error"] = error[:4000]
    if not count:
        values["attempts"] = jobs.c.attempts - 1
    await uow.conn.execute(
        update(jobs).where(jobs.c.id == job.id, jobs.c.locked_by == worker_id).values(**values)
    )
    uow.jobs_enqueued += 1


async def mark_failed(uow: UnitOfWork, job: Job, worker_id: str, error: str) -> None:
    now = utcnow()
    await uow.conn.execute(
        update(jobs)
        .where(jobs.c.id == job.id, jobs.c.locked_by == worker_id)
        .values(
            status="failed",
            locked_by=None,
            locked_until=None,
            last_error=error[:4000],
            updated_at=now,
        )
    )


# --- worker ------------------------------------------------------------------------------------

Handler = Callable[[UnitOfWork, Job], Awaitable[None]]
DetachedHandler = Callable[[Database, Job], Awaitable[None]]


@dataclass
class JobKind:
    """A handler and the retry policy for one job kind.

    A `handler` runs inside the unit of work that also deletes the job, so its effects and the job's
    completion commit together: exactly-once effects on the database. A `detached` handler talks to
    the outside world (HTTP, a carrier): it opens its own units of work on the database and must be
    idempotent, since a crash between its effect and the job's deletion runs it again.
    """

    handler: Handler | None = None
    detached: DetachedHandler | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)


class Worker:
    """Claims and runs jobs until stopped. Several may run in one process and across processes."""

    def __init__(
        self,
        db: Database,
        kinds: Mapping[str, JobKind],
        *,
        name: str | None = None,
        batch: int = 20,
        concurrency: int = 20,
        poll_interval: float = 0.2,
        lease: float = 60.0,
    ) -> None:
        self.db = db
        self.kinds = kinds
        self.id = name or f"{socket.gethostname()}:{os.getpid()}:{random.randrange(1 << 30):x}"
        self.batch = batch
        self.poll_interval = poll_interval
        self.lease = lease
        self._sem = asyncio.Semaphore(concurrency)
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def stop(self) -> None:
        self._stopping.set()
        self.db.jobs_available.set()

    async def run(self) -> None:
        """Poll for due jobs and run them concurrently; returns after `stop()` once in-flight jobs end."""
        while not self._stopping.is_set():
            free = self._sem._value  # how many more jobs this worker can start now
            claimed: list[Job] = []
            if free > 0:
                try:
                    claimed = await claim(self.db, self.id, min(self.batch, free), self.lease)
                except Exception:
                    log.exception("claiming jobs failed")
            for job in claimed:
                await self._sem.acquire()
                task = asyncio.create_task(self._run_one(job))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if len(claimed) >= min(self.batch, max(free, 1)) and free > 0:
                await asyncio.sleep(0)
                continue
            self.db.jobs_available.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.db.jobs_available.wait(), self.poll_interval)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def run_until_idle(self, timeout: float = 30.0) -> None:
        """Run due jobs until none are left (tests and CLI use this)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            claimed = await claim(self.db, self.id, self.batch, self.lease)
            if not claimed:
                return
            await asyncio.gather(*(self._run_one(j, acquired=False) for j in claimed))

    async def _run_one(self, job: Job, *, acquired: bool = True) -> None:
        try:
            await asyncio.shield(self._execute(job))
        finally:
            if acquired:
                self._sem.release()

    async def _execute(self, job: Job) -> None:
        kind = self.kinds.get(job.kind)
        if kind is None:
            async with self.db.transaction() as uow:
                await mark_failed(uow, job, self.id, f"no handler for job kind {job.kind!r}")
            return
        try:
            if kind.handler is not None:
                async with self.db.transaction() as uow:
                    await kind.handler(uow, job)
                    await complete(uow, job, self.id)
            else:
                assert kind.detached is not None
                await kind.detached(self.db, job)
                async with self.db.transaction() as uow:
                    await complete(uow, job, self.id)
        except RetryLater as later:
            async with self.db.transaction() as uow:
                await reschedule(uow, job, self.id, later.delay, None, count=False)
        except PermanentJobError as exc:
            log.warning("job %s %s failed permanently: %s", job.kind, job.id, exc)
            async with self.db.transaction() as uow:
                await mark_failed(uow, job, self.id, f"{type(exc).__name__}: {exc}")
        except Exception as exc:
            error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            if not isinstance(exc, JobError):
                log.exception("job %s %s raised", job.kind, job.id)
            decision = kind.retry.decide(job.attempts)
            async with self.db.transaction() as uow:
                if decision.retry:
                    await reschedule(uow, job, self.id, decision.delay, error)
                else:
                    await mark_failed(uow, job, self.id, error)


async def failed_jobs(db: Database, kind: str | None = None) -> list[RowMapping]:
    async with db.transaction() as uow:
        q = select(jobs).where(jobs.c.status == "failed")
        if kind:
            q = q.where(jobs.c.kind == kind)
        return list((await uow.conn.execute(q.order_by(jobs.c.id))).mappings().all())
