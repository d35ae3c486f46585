"""The durable job queue: a table in the same database as the business rows.

Enqueue inside the caller's unit of work, so a job exists exactly when the change that caused it
committed. Workers claim due jobs in batches (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: one short
write transaction), hold them under a lease that they keep extending while the job runs, and either
delete them (done), reschedule them (retry with capped exponential backoff) or mark them `failed`
(visible, never silently dropped). A job whose worker died is claimed again when its lease runs out.
Kinds with a batch handler get many due jobs at once and finish them with a few statements in all
(`JobKind`), and a job may carry many items (`enqueue_items`: the messages of a group commit, the
receipts or webhook events of a batch), settled one by one (`settle`): that is what lets one
process move a thousand messages a second.

Caveats:
- Jobs sharing a `group_key` run one at a time in id order. Ids come from the database in insert
  order, so the order is the order of the enqueueing transactions only when they do not overlap.
- A worker claims only the kinds it knows. A job of a kind that no running worker knows stays queued
  (a newer worker may know it) rather than failing.
- Clocks: `run_at` and leases use each process's UTC clock; keep the machines' clocks in sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import random
import socket
import time
import traceback
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, Text, bindparam, delete, exists, func, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.sql.dml import ReturningUpdate, Update

from signalpost.kit.clock import utcnow
from signalpost.kit.db import Database, UnitOfWork, background_work
from signalpost.models import jobs

log = logging.getLogger("signalpost.queue")

ERROR_MAX_CHARS = 4000
WORKER_ID_MAX_CHARS = 64  # jobs.locked_by

# --- retry policy ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay: float = 0.0


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff: after run `n` fails, wait `min(cap, base * factor**(n-1))`.

    A job runs at most `max_attempts` times (unless `enqueue(..., max_attempts=)` set its own limit).
    `jitter` is the largest fraction of the delay removed at random (0 = deterministic), which spreads
    out retries of jobs that failed together.
    """

    max_attempts: int = 5
    base: float = 1.0
    factor: float = 2.0
    cap: float = 300.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base < 0 or self.cap < 0:
            raise ValueError("base and cap must not be negative")
        if self.factor < 1:
            raise ValueError("factor must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")

    def delay(self, attempt: int) -> float:
        """The backoff after run number `attempt` (1-based) failed, before jitter."""
        try:
            raw = float(self.base) * float(self.factor) ** max(attempt - 1, 0)
        except OverflowError:
            return self.cap
        return self.cap if math.isinf(raw) else min(self.cap, raw)

    def decide(
        self,
        attempt: int,
        *,
        max_attempts: int | None = None,
        rng: random.Random | None = None,
    ) -> RetryDecision:
        """What to do after run number `attempt` (1-based) failed; `max_attempts` overrides ours."""
        limit = max_attempts if max_attempts else self.max_attempts
        if attempt >= limit:
            return RetryDecision(retry=False)
        delay = self.delay(attempt)
        if self.jitter:
            delay -= delay * self.jitter * (rng or random).random()
        return RetryDecision(retry=True, delay=delay)


class JobError(Exception):
    """A job failed in a way that may succeed later; retried per the policy (logged briefly)."""


class PermanentJobError(Exception):
    """A job failed in a way that will not change by retrying; marked failed at once."""


class RetryLater(Exception):
    """Not a failure: run the job again after `delay` seconds without counting an attempt."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"retry in {delay:.3f}s")
        self.delay = max(0.0, delay)


class LeaseLost(Exception):
    """This worker no longer holds the job (its lease ran out and another worker claimed it)."""


# --- enqueue -----------------------------------------------------------------------------------


async def enqueue(
    uow: UnitOfWork,
    kind: str,
    payload: Mapping[str, Any],
    *,
    run_at: datetime | None = None,
    delay: float = 0.0,
    max_attempts: int | None = None,
    group_key: str | None = None,
) -> None:
    """Add a job in the caller's transaction: it exists exactly when that transaction commits.

    `max_attempts` (default: the kind's `RetryPolicy.max_attempts`) limits how often it runs;
    jobs sharing a `group_key` run one at a time, in the order they were enqueued.
    """
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


async def enqueue_many(
    uow: UnitOfWork, specs: Sequence[Mapping[str, Any]], *, defer: bool = False
) -> None:
    """Add several jobs in one statement; each spec has `enqueue`'s arguments as keys.

    `defer`: insert them when the unit of work ends (`UnitOfWork.defer_insert`), together with the
    jobs of the other work sharing the transaction.
    """
    if not specs:
        return
    now = utcnow()
    rows = []
    for s in specs:
        run_at = s.get("run_at") or (now + timedelta(seconds=float(s.get("delay") or 0.0)))
        max_attempts = s.get("max_attempts")
        if max_attempts is not None and int(max_attempts) < 1:
            raise ValueError("max_attempts must be at least 1")
        rows.append(
            {
                "kind": s["kind"],
                "payload": dict(s["payload"]),
                "status": "queued",
                "attempts": 0,
                # 0 = the kind's retry policy decides; replaced by the real limit on first failure.
                "max_attempts": int(max_attempts or 0),
                "run_at": run_at,
                "group_key": s.get("group_key"),
                "created_at": now,
                "updated_at": now,
            }
        )
    uow.note_due(min(r["run_at"] for r in rows))
    if defer:
        uow.defer_insert(jobs, rows)
    else:
        await uow.conn.insert_many(jobs, rows)
    uow.jobs_enqueued += len(rows)


def enqueue_items(
    uow: UnitOfWork,
    kind: str,
    key: str,
    items: Sequence[Any],
    *,
    run_at: datetime,
    max_attempts: int | None = None,
    per_job: int = 200,
) -> None:
    """Queue `items` for jobs of `kind` whose payload is `{key: [item, …]}`.

    The items queued in one unit of work for the same kind and key share their jobs (up to
    `per_job` items each) when they are due at the same time, or both already due: the messages of
    a group commit go to the carrier in one job, not one job each. The jobs are inserted when the
    unit of work ends; the handler settles each item on its own (`settle`).
    """
    due_now = run_at <= utcnow()
    slot = ("queue.items", kind, key, None if due_now else run_at, max_attempts)
    gathered: _Gathered | None = uow.cache.get(slot)
    if gathered is None:
        gathered = uow.cache[slot] = _Gathered(run_at)
        uow.before_flush(
            functools.partial(_enqueue_gathered, uow, kind, key, gathered, max_attempts, per_job)
        )
    gathered.items.extend(items)
    gathered.run_at = min(gathered.run_at, run_at)  # the earliest, among items due already


@dataclass
class _Gathered:
    """The items `enqueue_items` gathered in one unit of work for one kind, key and due time."""

    run_at: datetime
    items: list[Any] = field(default_factory=list)


async def _enqueue_gathered(
    uow: UnitOfWork,
    kind: str,
    key: str,
    gathered: _Gathered,
    max_attempts: int | None,
    per_job: int,
) -> None:
    items = gathered.items
    await enqueue_many(
        uow,
        [
            {
                "kind": kind,
                "payload": {key: items[i : i + per_job]},
                "run_at": gathered.run_at,
                "max_attempts": max_attempts,
            }
            for i in range(0, len(items), per_job)
        ],
        defer=True,
    )


@dataclass
class Settled:
    """What becomes of jobs carrying several items once each item has its outcome (`settle`)."""

    complete: list[Job] = field(default_factory=list)  # every item done
    outcomes: dict[int, Exception] = field(default_factory=dict)  # for the worker, by job id
    carried: dict[float, list[Any]] = field(default_factory=dict)  # items for new jobs, by delay


def settle(
    jobs_: Sequence[Job],
    items: Callable[[Job], Sequence[Any]],
    later: Mapping[tuple[int, Any], float],
    errors: Mapping[tuple[int, Any], Exception] | None = None,
) -> Settled:
    """Settle jobs from the outcomes of their items, keyed `(job id, item)`: an item in neither
    `later` (run again in so many seconds) nor `errors` is done.

    A job whose items are all done is complete. One whose items all wait the same time runs again
    then (`RetryLater`). An error of any item is the job's outcome: the job runs again whole, per
    its retry policy (its done items must be skipped then). Otherwise the job is complete and its
    waiting items go on in new jobs, one per delay (`carried`), which the caller queues in the
    same unit of work.
    """
    out = Settled()
    for job in jobs_:
        keys = items(job)
        error = (
            next((errors[job.id, k] for k in keys if (job.id, k) in errors), None)
            if errors
            else None
        )
        if error is not None:
            out.outcomes[job.id] = error
            continue
        left = {k: later[job.id, k] for k in keys if (job.id, k) in later}
        if not left:
            out.complete.append(job)
        elif len(left) == len(keys) and len(set(left.values())) == 1:
            out.outcomes[job.id] = RetryLater(next(iter(left.values())))
        else:
            out.complete.append(job)
            for item, delay in left.items():
                out.carried.setdefault(delay, []).append(item)
    return out


async def finish_settled(
    uow: UnitOfWork, settled: Settled, kind: str, key: str, *, max_attempts: int | None = None
) -> dict[int, Exception]:
    """In a batch handler's last unit of work: queue the carried items in new jobs of `kind`
    (`{key: [...]}`, one per delay), complete the jobs that are done, and return the outcomes of
    the others for the worker."""
    await enqueue_many(
        uow,
        [
            {"kind": kind, "payload": {key: items}, "delay": delay, "max_attempts": max_attempts}
            for delay, items in settled.carried.items()
        ],
    )
    await complete_many_within(uow, settled.complete)
    return settled.outcomes


# --- claiming and finishing -------------------------------------------------------------------


@dataclass
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int  # including this run
    max_attempts: int  # 0 = per the kind's retry policy
    group_key: str | None
    worker_id: str = ""  # who holds it
    completed: bool = False  # a detached handler finished it in its own last transaction
    lost: bool = False  # its lease ran out while a batch ran it (see `held`)

    @classmethod
    def from_row(cls, row: RowMapping) -> Job:
        return cls(
            id=row["id"],
            kind=row["kind"],
            payload=dict(row["payload"]),
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            group_key=row["group_key"],
            worker_id=row["locked_by"] or "",
        )


async def claim(
    db: Database,
    worker_id: str,
    limit: int,
    lease: float,
    *,
    kinds: Collection[str] | None = None,
    requeue: bool = True,
) -> list[Job]:
    """Claim up to `limit` due jobs (of `kinds`, if given) for `worker_id`, leased for `lease` s.

    Due: queued with `run_at` passed. With `requeue`, a running job whose lease expired (its worker
    died) is queued again first, keeping its `run_at`, so it is among the first claimed. A job whose
    group has an earlier job still pending (queued or running) is not due yet.
    """
    if limit <= 0 or (kinds is not None and not kinds):
        return []
    now = utcnow()
    skip_locked = not db.is_sqlite
    params = {
        "now": now,
        "limit": limit,
        "worker_id": worker_id,
        "locked_until": now + timedelta(seconds=lease),
    }
    async with db.transaction() as uow:
        requeued = 0
        if requeue:
            requeued = (
                await uow.conn.execute(requeue_expired_statement(skip_locked), {"now": now})
            ).rowcount
        stmt = claim_statement(tuple(sorted(kinds)) if kinds is not None else None, skip_locked)
        rows = (await uow.conn.execute(stmt, params)).mappings().all()
    if requeued:
        log.warning("queued %d job(s) again whose worker's lease expired", requeued)
    return sorted((Job.from_row(r) for r in rows), key=lambda j: j.id)


# What a `Job` is made of: claiming returns these only (no timestamps to convert).
_JOB_COLUMNS = (
    jobs.c.id,
    jobs.c.kind,
    jobs.c.payload,
    jobs.c.attempts,
    jobs.c.max_attempts,
    jobs.c.group_key,
    jobs.c.locked_by,
)


@functools.cache
def requeue_expired_statement(skip_locked: bool) -> Update:
    """Queue running jobs whose lease expired (before `:now`) again; few jobs run at any time."""
    expired = select(jobs.c.id).where(
        jobs.c.status == "running", jobs.c.locked_until < bindparam("now")
    )
    if skip_locked:
        # Rows another claimer is requeueing right now are its business: no waiting, no deadlock.
        cte = expired.with_for_update(skip_locked=True).cte("expired")
        target = update(jobs).where(jobs.c.id.in_(select(cte.c.id)))
    else:
        target = update(jobs).where(jobs.c.id.in_(expired.scalar_subquery()))
    return target.values(status="queued", locked_by=None, locked_until=None)


@functools.lru_cache(maxsize=64)
def claim_statement(kinds: tuple[str, ...] | None, skip_locked: bool) -> ReturningUpdate[Any]:
    """The `UPDATE … RETURNING` that claims due jobs, built once per kinds and backend.

    Parameters: `now`, `limit`, `worker_id`, `locked_until`.
    The candidates come in `run_at` order straight from the `(status, run_at)` index, and the scan
    stops after `limit` of them passed the filters, however long the backlog.
    PostgreSQL (`skip_locked`): they are picked and locked with `FOR UPDATE SKIP LOCKED` in a CTE,
    which is evaluated exactly once (the planner can never re-run a LIMIT-ed locking subquery and
    claim more rows than it picked); concurrent claimers skip each other's rows.
    SQLite: the write transaction (BEGIN IMMEDIATE, one writer at a time) makes it atomic.
    """
    cand = jobs.alias("cand")
    earlier = jobs.alias("earlier")
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
    now = bindparam("now", type_=jobs.c.run_at.type)
    conditions = [cand.c.status == "queued", cand.c.run_at <= now, not_blocked]
    if kinds is not None:
        conditions.append(cand.c.kind.in_(kinds))
    candidates = (
        select(cand.c.id)
        .where(*conditions)
        .order_by(cand.c.run_at)
        .limit(bindparam("limit", type_=Integer()))
    )
    if skip_locked:
        picked = candidates.with_for_update(skip_locked=True, of=cand).cte("picked")
        target = update(jobs).where(jobs.c.id.in_(select(picked.c.id)))
    else:
        target = update(jobs).where(jobs.c.id.in_(candidates.scalar_subquery()))
    return target.values(
        status="running",
        locked_by=bindparam("worker_id"),
        locked_until=bindparam("locked_until", type_=jobs.c.locked_until.type),
        attempts=jobs.c.attempts + 1,
        updated_at=now,
    ).returning(*_JOB_COLUMNS)


_COMPLETE = delete(jobs).where(
    jobs.c.id == bindparam("job_id"), jobs.c.locked_by == bindparam("worker_id")
)
_COMPLETE_MANY = delete(jobs).where(
    jobs.c.id.in_(bindparam("job_ids", expanding=True)),
    jobs.c.locked_by == bindparam("worker_id"),
)
_HELD = (
    select(jobs.c.id)
    .where(
        jobs.c.id.in_(bindparam("job_ids", expanding=True)),
        jobs.c.locked_by == bindparam("worker_id"),
    )
    .order_by(jobs.c.id)
)
_HELD_FOR_UPDATE = _HELD.with_for_update()
_HELD_BY = jobs.c.id == bindparam("job_id"), jobs.c.locked_by == bindparam("worker_id")
# Both run as executemany (one parameter set per job) when the outcomes of a batch are recorded.
_RESCHEDULE = (
    update(jobs)
    .where(*_HELD_BY)
    .values(
        status="queued",
        run_at=bindparam("next_run_at", type_=jobs.c.run_at.type),
        locked_by=None,
        locked_until=None,
        updated_at=bindparam("now", type_=jobs.c.updated_at.type),
        attempts=jobs.c.attempts - bindparam("give_back", type_=Integer()),
        max_attempts=bindparam("limit", type_=Integer()),
        last_error=func.coalesce(bindparam("error", type_=Text()), jobs.c.last_error),
    )
)
_MARK_FAILED = (
    update(jobs)
    .where(*_HELD_BY)
    .values(
        status="failed",
        locked_by=None,
        locked_until=None,
        updated_at=bindparam("now", type_=jobs.c.updated_at.type),
        max_attempts=bindparam("limit", type_=Integer()),
        last_error=bindparam("error", type_=Text()),
    )
)


async def complete(uow: UnitOfWork, job: Job, worker_id: str) -> None:
    """Delete a finished job; `LeaseLost` (roll back!) when another worker holds it by now."""
    result = await uow.conn.execute(_COMPLETE, {"job_id": job.id, "worker_id": worker_id})
    if result.rowcount == 0:
        raise LeaseLost(f"job {job.id} is no longer held by {worker_id}")
    if job.group_key is not None:
        uow.jobs_enqueued += 1  # the next job of its group is due now: wake the workers


async def complete_within(uow: UnitOfWork, job: Job) -> None:
    """Finish a job inside a detached handler's last unit of work, saving a transaction of its own.

    The deletion commits (or rolls back) with the handler's own writes; `LeaseLost` rolls them back.
    """
    await complete(uow, job, job.worker_id)

    def done() -> None:
        job.completed = True

    uow.after_commit(done)


def _distinct(batch: Sequence[Job]) -> tuple[list[Job], str]:
    """The jobs without repeats, and the worker holding them (a batch has one)."""
    out = list({j.id: j for j in batch}.values())
    holders = {j.worker_id for j in out}
    if len(holders) > 1:
        raise ValueError(f"a batch is held by one worker, not {sorted(holders)}")
    return out, out[0].worker_id if out else ""


async def held(uow: UnitOfWork, batch: Sequence[Job]) -> list[Job]:
    """The jobs of `batch` their worker still holds, locked until the unit of work ends.

    A batch handler calls this first in its last unit of work and writes the effects of these jobs
    only. The others are marked `lost`: their lease ran out and they were queued again, for another
    worker (or this one, later) to run; the worker records no outcome for them.
    """
    batch, worker_id = _distinct(batch)
    if not batch:
        return []
    stmt = _HELD_FOR_UPDATE if uow.conn.dialect.name == "postgresql" else _HELD
    params = {"job_ids": [j.id for j in batch], "worker_id": worker_id}
    ids = {row[0] for row in await uow.conn.execute(stmt, params)}
    for job in batch:
        if job.id not in ids:
            job.lost = True
            log.warning("job %s %s: lease lost; another run will do its work", job.kind, job.id)
    return [j for j in batch if j.id in ids]


async def complete_many_within(uow: UnitOfWork, batch: Sequence[Job]) -> None:
    """Finish several jobs inside a batch handler's last unit of work, in one statement.

    Like `complete_within`: the deletions commit with the handler's writes, and `LeaseLost` (roll
    back!) when any job is no longer held, which `held()` earlier in the same unit rules out.
    """
    batch, worker_id = _distinct(batch)
    if not batch:
        return
    result = await uow.conn.execute(
        _COMPLETE_MANY, {"job_ids": [j.id for j in batch], "worker_id": worker_id}
    )
    if result.rowcount != len(batch):
        raise LeaseLost(f"{len(batch) - result.rowcount} job(s) no longer held by {worker_id}")
    if any(j.group_key is not None for j in batch):
        uow.jobs_enqueued += 1  # the next jobs of their groups are due now: wake the workers

    def done() -> None:
        for job in batch:
            job.completed = True

    uow.after_commit(done)


def _reschedule_params(
    job: Job,
    worker_id: str,
    now: datetime,
    delay: float,
    error: str | None,
    *,
    count: bool,
    limit: int,
) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "worker_id": worker_id,
        "next_run_at": now + timedelta(seconds=delay),
        "now": now,
        "give_back": 0 if count else 1,
        "limit": limit,
        "error": None if error is None else error[:ERROR_MAX_CHARS],
    }


def _failed_params(
    job: Job, worker_id: str, now: datetime, error: str, limit: int
) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "worker_id": worker_id,
        "now": now,
        "limit": limit,
        "error": error[:ERROR_MAX_CHARS],
    }


async def reschedule(
    uow: UnitOfWork,
    job: Job,
    worker_id: str,
    delay: float,
    error: str | None,
    *,
    count: bool = True,
    max_attempts: int | None = None,
) -> None:
    """Queue the job again in `delay` s; `count=False` gives back the attempt this run took."""
    params = _reschedule_params(
        job,
        worker_id,
        utcnow(),
        delay,
        error,
        count=count,
        limit=max_attempts or job.max_attempts,
    )
    await uow.conn.execute(_RESCHEDULE, params)
    uow.note_due(params["next_run_at"])
    uow.jobs_enqueued += 1


async def mark_failed(
    uow: UnitOfWork, job: Job, worker_id: str, error: str, *, max_attempts: int | None = None
) -> None:
    """Keep the job as `failed` with its last error (see `failed_jobs`)."""
    params = _failed_params(job, worker_id, utcnow(), error, max_attempts or job.max_attempts)
    await uow.conn.execute(_MARK_FAILED, params)
    if job.group_key is not None:
        uow.jobs_enqueued += 1  # the next job of its group is due now: wake the workers


async def extend_leases(
    db: Database, job_ids: Collection[int], worker_id: str, lease: float
) -> int:
    """Push out the lease of jobs this worker still holds; returns how many it holds."""
    if not job_ids:
        return 0
    now = utcnow()
    async with db.transaction() as uow:
        result = await uow.conn.execute(
            update(jobs)
            .where(
                jobs.c.id.in_(sorted(job_ids)),
                jobs.c.locked_by == worker_id,
                jobs.c.status == "running",
            )
            .values(locked_until=now + timedelta(seconds=lease))
        )
    return int(result.rowcount)


# --- worker ------------------------------------------------------------------------------------

Handler = Callable[[UnitOfWork, Job], Awaitable[None]]
DetachedHandler = Callable[[Database, Job], Awaitable[None]]
# Outcomes of the jobs of a batch that it did not finish, by job id (see `JobKind`).
Outcomes = Mapping[int, Exception]
BatchHandler = Callable[[Database, list[Job]], Awaitable[Outcomes | None]]


@dataclass
class JobKind:
    """A handler and the retry policy for one job kind.

    A `handler` runs inside the unit of work that also deletes the job, so its effects and the job's
    completion commit together: exactly-once effects on the database. A `detached` handler talks to
    the outside world (HTTP, a carrier): it opens its own units of work on the database and must be
    idempotent, since a crash between its effect and the job's deletion runs it again.

    Handlers signal outcomes by raising: `JobError` (or any exception) → retry per `retry`;
    `PermanentJobError` → failed at once; `RetryLater(delay)` → run again later, no attempt counted.

    A `batch` handler is detached and gets up to `batch_size` due jobs of its kind at once, to do
    their work with a few statements instead of a few per job. In its last unit of work it takes
    `held()` and finishes jobs with `complete_many_within`; it returns the outcome of each job it
    did not finish (`{job.id: RetryLater(d) | PermanentJobError(...) | any exception}`), and the
    worker records them all in one transaction. A job neither finished nor given an outcome is
    complete. When the handler raises, its unfinished jobs share the exception; an unexpected one
    (not `JobError` or `RetryLater`) makes the worker run them again one by one, so one bad job
    cannot fail a whole batch.

    Jobs may carry several items each (`enqueue_items`); `size(job)` counts them, and `batch_size`
    is then a number of items: a batch takes jobs until their items reach it (at least one job).
    """

    handler: Handler | None = None
    detached: DetachedHandler | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    batch: BatchHandler | None = None
    batch_size: int = 100
    size: Callable[[Job], int] | None = None

    def __post_init__(self) -> None:
        given = [h for h in (self.handler, self.detached, self.batch) if h is not None]
        if len(given) != 1:
            raise ValueError("a JobKind needs exactly one of handler=, detached= and batch=")
        if self.batch_size < 1:
            raise ValueError("batch_size must be positive")


def _default_worker_id() -> str:
    host = socket.gethostname()[:40]
    return f"{host}:{os.getpid()}:{random.randrange(1 << 30):x}"


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


# How long after a claim that found jobs a worker still counts as busy (see `Worker.linger`).
BUSY_AFTER_CLAIM = 0.5
# A claim made while `before_claim` says the foreground is still busy takes this many jobs (a job
# may carry a few hundred items).
SLICE_JOBS = 2


class Worker:
    """Claims and runs jobs until stopped. Several may run in one process and across processes.

    Each claim takes up to `batch` due jobs; jobs of a batch kind run as chunks of its `batch_size`
    (one task each), others one task per job. At most `concurrency` jobs are held at once.

    `linger`: while the worker is busy (it claimed jobs within the last `BUSY_AFTER_CLAIM` s), it
    waits this long before each claim, so that jobs arriving one by one are claimed and run as one
    batch instead of many small ones: each batch has a fixed cost (its claim, its transactions), and
    a stream of tiny batches spends the CPU on that. An idle worker claims at once, so a lone message
    is not delayed.

    `before_claim`: awaited before each claim; in-process workers under `serve` wait there for the
    API to be quiet (kit.foreground). When it answers False (it gave up waiting), the worker claims
    only a slice of its usual batch.
    While a job runs, the worker renews its lease every `lease / 3` s; a worker that dies stops
    renewing, and its jobs are claimed again once `lease` s have passed.
    """

    def __init__(
        self,
        db: Database,
        kinds: Mapping[str, JobKind],
        *,
        name: str | None = None,
        batch: int = 400,
        concurrency: int = 800,
        poll_interval: float = 0.2,
        lease: float = 60.0,
        linger: float = 0.0,
        before_claim: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        if batch < 1 or concurrency < 1 or poll_interval <= 0 or lease <= 0:
            raise ValueError("batch, concurrency, poll_interval and lease must be positive")
        if linger < 0:
            raise ValueError("linger must not be negative")
        self.db = db
        self.kinds = kinds
        self.id = (name or _default_worker_id())[:WORKER_ID_MAX_CHARS]
        self.batch = batch
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.lease = lease
        self.linger = linger
        self.before_claim = before_claim
        self._busy_until = float("-inf")  # monotonic time until which we count as busy
        self._stopping = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._last_requeue = float("-inf")
        self._tasks: set[asyncio.Task[None]] = set()
        self._running: set[int] = set()  # ids of the jobs this worker holds

    def stop(self) -> None:
        """Claim nothing more; `run()` returns once the jobs in flight have finished."""
        self._stopping.set()

    async def run(self) -> None:
        """Poll for due jobs and run them concurrently; returns after `stop()` once in-flight jobs end."""
        # This task and the ones it starts do background work: their SQLite transactions take
        # turns with the API's (kit.db.WriteTurns).
        background_work.set(True)
        keeper = asyncio.create_task(self._keep_leases())
        taken = False
        try:
            while not self._stopping.is_set():
                self._slot_freed.clear()  # before counting: a job ending from now on wakes us
                free = self.concurrency - len(self._running)
                if free > 0 and not taken:
                    await self._linger()
                    want = min(self.batch, free)
                    if self.before_claim is not None and not await self.before_claim():
                        # Still not our turn, but background work must move: a small slice, so
                        # that the requests waiting behind it are not held up for long.
                        want = min(want, SLICE_JOBS)
                    # Cleared before claiming: an enqueue that commits from now on wakes us up.
                    self.db.jobs_available.clear()
                    claimed = await self._claim(want)
                    if claimed:
                        self._busy_until = time.monotonic() + BUSY_AFTER_CLAIM
                    for unit in self._units(claimed):
                        self._start(unit)
                    if len(claimed) == want:
                        # More may be due: the other workers of this process claim too.
                        self.db.jobs_available.set()
                        await asyncio.sleep(0)  # let the started jobs begin
                        continue
                woken = await self._wait(for_jobs=free > 0)
                # Woken by an enqueue that another worker's claim, begun since, has taken in:
                # claiming again would find nothing (each empty claim is a write transaction).
                taken = woken and not self.db.jobs_available.is_set()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    async def run_until_idle(self, timeout: float = 30.0) -> None:
        """Run due jobs until none are left (tests and one-shot commands use this)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            claimed = await claim(self.db, self.id, self.batch, self.lease, kinds=self.kinds.keys())
            if not claimed:
                return
            await asyncio.gather(*(self._run_unit(u) for u in self._units(claimed)))

    async def _linger(self) -> None:
        """While busy, let due jobs gather for `linger` s before claiming them (see the class)."""
        if self.linger and time.monotonic() < self._busy_until:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.linger)

    def _units(self, claimed: Sequence[Job]) -> list[list[Job]]:
        """What runs as one task: a chunk of one batch kind's jobs, or a single job of another kind."""
        units: list[list[Job]] = []
        batches: dict[str, list[Job]] = {}
        for job in claimed:
            kind = self.kinds.get(job.kind)
            if kind is not None and kind.batch is not None:
                batches.setdefault(job.kind, []).append(job)
            else:
                units.append([job])
        for name, group in batches.items():
            kind = self.kinds[name]
            unit: list[Job] = []
            items = 0
            for job in group:
                n = kind.size(job) if kind.size is not None else 1
                if unit and items + n > kind.batch_size:
                    units.append(unit)
                    unit, items = [], 0
                unit.append(job)
                items += n
            if unit:
                units.append(unit)
        return units

    async def _claim(self, limit: int) -> list[Job]:
        # Looking for jobs of dead workers on every claim would double the claim's cost under load;
        # once a second (or a few times per lease, if shorter) finds them soon after they expire.
        now = time.monotonic()
        requeue = now - self._last_requeue >= min(1.0, self.lease / 4)
        try:
            jobs_ = await claim(
                self.db, self.id, limit, self.lease, kinds=self.kinds.keys(), requeue=requeue
            )
            if requeue:
                self._last_requeue = now
            return jobs_
        except Exception:
            log.exception("claiming jobs failed")
            return []

    def _start(self, unit: list[Job]) -> None:
        self._running.update(j.id for j in unit)  # counted at once, before the task starts
        task = asyncio.create_task(self._run_unit(unit), name=f"job-{unit[0].kind}-{unit[0].id}")
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slot_freed.set()

    async def _wait(self, *, for_jobs: bool) -> bool:
        """Until the poll interval passes (or a job queued here for later is due), `stop()`, and: an
        enqueue (`for_jobs`), or a free slot.

        True when an enqueue ended the wait."""
        event = self.db.jobs_available if for_jobs else self._slot_freed
        timeout = self.poll_interval
        due = self.db.seconds_to_due() if for_jobs else None
        if due is not None:  # a job queued here for later is due before the next poll
            timeout = min(timeout, due + 0.001)
        waits = [asyncio.ensure_future(self._stopping.wait()), asyncio.ensure_future(event.wait())]
        try:
            done, _ = await asyncio.wait(waits, timeout=timeout, return_when="FIRST_COMPLETED")
        finally:
            for w in waits:
                w.cancel()
        return for_jobs and waits[1] in done

    async def _keep_leases(self) -> None:
        interval = self.lease / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await extend_leases(self.db, set(self._running), self.id, self.lease)
            except Exception:
                log.exception("renewing job leases failed")

    async def _run_unit(self, unit: list[Job]) -> None:
        self._running.update(j.id for j in unit)
        try:
            # Shielded: stopping or cancelling the worker never interrupts a job or its final write.
            kind = self.kinds.get(unit[0].kind)
            if kind is not None and kind.batch is not None:
                await asyncio.shield(self._execute_batch(kind, unit))
            else:
                await asyncio.shield(self._execute(unit[0]))
        except asyncio.CancelledError:
            raise
        except Exception:
            # Only the final status write can get here (e.g. the database went away); the lease
            # runs out and another worker runs the job again.
            log.exception(
                "recording the outcome of %d job(s) %s from %s failed",
                len(unit),
                unit[0].kind,
                unit[0].id,
            )
        finally:
            for job in unit:
                self._running.discard(job.id)

    async def _execute(self, job: Job) -> None:
        kind = self.kinds.get(job.kind)
        if kind is None:  # not claimed by `run`, but `claim` may be called with other kinds
            async with self.db.transaction() as uow:
                await mark_failed(uow, job, self.id, f"no handler for job kind {job.kind!r}")
            return
        limit = job.max_attempts or kind.retry.max_attempts
        if job.attempts > limit:
            # Only a job whose worker kept dying gets here: its lease expired on its last attempt.
            async with self.db.transaction() as uow:
                await mark_failed(uow, job, self.id, _lease_expired(job, limit), max_attempts=limit)
            return
        try:
            if kind.handler is not None:
                async with self.db.transaction() as uow:
                    await kind.handler(uow, job)
                    await complete(uow, job, self.id)
            else:
                assert kind.detached is not None
                await kind.detached(self.db, job)
                if not job.completed:
                    async with self.db.transaction() as uow:
                        await complete(uow, job, self.id)
        except LeaseLost:
            log.warning("job %s %s: lease lost; its effects were rolled back", job.kind, job.id)
        except RetryLater as later:
            async with self.db.transaction() as uow:
                await reschedule(uow, job, self.id, later.delay, None, count=False)
        except PermanentJobError as exc:
            log.warning("job %s %s failed permanently: %s", job.kind, job.id, exc)
            async with self.db.transaction() as uow:
                await mark_failed(
                    uow, job, self.id, f"{type(exc).__name__}: {exc}", max_attempts=limit
                )
        except Exception as exc:
            error = _describe(exc)
            if isinstance(exc, JobError):
                log.info("job %s %s attempt %s: %s", job.kind, job.id, job.attempts, error)
            else:
                log.exception("job %s %s raised", job.kind, job.id)
            decision = kind.retry.decide(job.attempts, max_attempts=limit)
            async with self.db.transaction() as uow:
                if decision.retry:
                    await reschedule(uow, job, self.id, decision.delay, error, max_attempts=limit)
                else:
                    await mark_failed(uow, job, self.id, error, max_attempts=limit)

    async def _execute_batch(self, kind: JobKind, batch: list[Job]) -> None:
        def limit(job: Job) -> int:
            return job.max_attempts or kind.retry.max_attempts

        # Jobs whose worker kept dying (their lease expired on their last attempt) do not run.
        expired = [j for j in batch if j.attempts > limit(j)]
        runnable = [j for j in batch if j.attempts <= limit(j)]
        outcomes = await self._call_batch(kind, runnable) if runnable else {}
        now = utcnow()
        finished: list[Job] = []
        retries: list[dict[str, Any]] = []
        failures = [
            _failed_params(j, self.id, now, _lease_expired(j, limit(j)), limit(j)) for j in expired
        ]
        failed_groups = any(j.group_key is not None for j in expired)
        for job in runnable:
            if job.completed or job.lost:
                continue
            outcome = outcomes.get(job.id)
            if outcome is None:
                finished.append(job)
            elif isinstance(outcome, LeaseLost):
                log.warning("job %s %s: lease lost", job.kind, job.id)
            elif isinstance(outcome, RetryLater):
                retries.append(
                    _reschedule_params(
                        job, self.id, now, outcome.delay, None, count=False, limit=job.max_attempts
                    )
                )
            else:
                error = _describe(outcome)
                if isinstance(outcome, PermanentJobError):
                    log.warning("job %s %s failed permanently: %s", job.kind, job.id, outcome)
                    decision = RetryDecision(retry=False)
                    error = f"{type(outcome).__name__}: {outcome}"
                else:
                    log.info("job %s %s attempt %s: %s", job.kind, job.id, job.attempts, error)
                    decision = kind.retry.decide(job.attempts, max_attempts=limit(job))
                if decision.retry:
                    retries.append(
                        _reschedule_params(
                            job, self.id, now, decision.delay, error, count=True, limit=limit(job)
                        )
                    )
                else:
                    failures.append(_failed_params(job, self.id, now, error, limit(job)))
                    failed_groups = failed_groups or job.group_key is not None
        if not (finished or retries or failures):
            return  # the usual case: the handler finished every job in its own last transaction
        async with self.db.transaction() as uow:
            if finished:
                params = {"job_ids": [j.id for j in finished], "worker_id": self.id}
                done = (await uow.conn.execute(_COMPLETE_MANY, params)).rowcount
                if done != len(finished):
                    log.warning("%d job(s) %s: lease lost", len(finished) - done, batch[0].kind)
                if any(j.group_key is not None for j in finished):
                    uow.jobs_enqueued += 1
            if retries:
                await uow.conn.execute(_RESCHEDULE, retries)
                uow.note_due(min(r["next_run_at"] for r in retries))
                uow.jobs_enqueued += 1
            if failures:
                await uow.conn.execute(_MARK_FAILED, failures)
                if failed_groups:
                    uow.jobs_enqueued += 1

    async def _call_batch(self, kind: JobKind, batch: list[Job]) -> dict[int, Exception]:
        """Run the batch handler; the outcomes of the jobs it did not finish."""
        assert kind.batch is not None
        try:
            return dict(await kind.batch(self.db, batch) or {})
        except Exception as exc:
            pending = [j for j in batch if not (j.completed or j.lost)]
            if len(pending) > 1 and not isinstance(exc, (JobError, RetryLater, LeaseLost)):
                log.exception(
                    "a batch of %d %s jobs raised; running them one by one",
                    len(batch),
                    batch[0].kind,
                )
                outcomes: dict[int, Exception] = {}
                for job in pending:
                    outcomes.update(await self._call_batch(kind, [job]))
                return outcomes
            if not isinstance(exc, (JobError, RetryLater, LeaseLost)):
                log.exception("job %s %s raised", batch[0].kind, batch[0].id)
            return {j.id: exc for j in pending}


def _lease_expired(job: Job, limit: int) -> str:
    return f"lease expired on attempt {job.attempts - 1} of {limit} (worker lost)"


async def failed_jobs(db: Database, kind: str | None = None) -> list[RowMapping]:
    """Jobs that ran out of attempts or failed permanently, oldest first."""
    async with db.transaction() as uow:
        q = select(jobs).where(jobs.c.status == "failed")
        if kind:
            q = q.where(jobs.c.kind == kind)
        return list((await uow.conn.execute(q.order_by(jobs.c.id))).mappings().all())
