"""The jobs table: claiming due jobs, finishing them, leases."""

from __future__ import annotations

import functools
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, Text, bindparam, delete, exists, func, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.sql.dml import ReturningUpdate, Update
from sqlalchemy.sql.selectable import Select

from signalpost.kit.clock import utcnow
from signalpost.kit.db import Database, UnitOfWork
from signalpost.kit.queue.retry import ERROR_MAX_CHARS, LeaseLost
from signalpost.models import jobs

log = logging.getLogger("signalpost.queue")

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
    # Rows another claimer is requeueing right now are its business: no waiting, no deadlock.
    target = _update_unlocked(expired, skip_locked)
    return target.values(status="queued", locked_by=None, locked_until=None)


def _update_unlocked(ids: Select[tuple[int]], skip_locked: bool) -> Update:
    """An update of the job rows `ids` selects; with `skip_locked` (PostgreSQL), of those no other
    transaction has locked, without waiting for any. SQLite has one writer at a time."""
    if skip_locked:
        free = ids.with_for_update(skip_locked=True).cte("free")
        return update(jobs).where(jobs.c.id.in_(select(free.c.id)))
    return update(jobs).where(jobs.c.id.in_(ids.scalar_subquery()))


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
        uow.wake((job.kind,))  # the next job of its group is due now: wake its workers


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
    grouped = {j.kind for j in batch if j.group_key is not None}
    if grouped:
        uow.wake(grouped)  # the next jobs of their groups are due now: wake their workers

    def done() -> None:
        for job in batch:
            job.completed = True

    uow.after_commit(done)


def reschedule_params(
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


def failed_params(
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
    params = reschedule_params(
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
    uow.wake((job.kind,))


async def mark_failed(
    uow: UnitOfWork, job: Job, worker_id: str, error: str, *, max_attempts: int | None = None
) -> None:
    """Keep the job as `failed` with its last error (see `failed_jobs`)."""
    params = failed_params(job, worker_id, utcnow(), error, max_attempts or job.max_attempts)
    await uow.conn.execute(_MARK_FAILED, params)
    if job.group_key is not None:
        uow.wake((job.kind,))  # the next job of its group is due now: wake its workers


async def extend_leases(
    db: Database, job_ids: Collection[int], worker_id: str, lease: float
) -> int:
    """Push out the lease of jobs this worker still holds; returns how many it renewed.

    On PostgreSQL a job whose row another transaction has locked is left as it is: that is its
    batch's last unit of work (`held`), which ends the job or gives it back. Waiting for it
    instead would lock rows in another order than `held` does (by id) and could deadlock with
    it; the loser's batch would be rolled back after its effects (webhook POSTs, carrier sends)
    were made. The next renewal, a third of the lease later, catches up any job left out.
    """
    if not job_ids:
        return 0
    now = utcnow()
    params = {
        "job_ids": sorted(job_ids),
        "worker_id": worker_id,
        "locked_until": now + timedelta(seconds=lease),
    }
    async with db.transaction() as uow:
        result = await uow.conn.execute(_extend_leases_statement(not db.is_sqlite), params)
    return int(result.rowcount)


@functools.cache
def _extend_leases_statement(skip_locked: bool) -> Update:
    mine = select(jobs.c.id).where(
        jobs.c.id.in_(bindparam("job_ids", expanding=True)),
        jobs.c.locked_by == bindparam("worker_id"),
        jobs.c.status == "running",
    )
    return _update_unlocked(mine, skip_locked).values(
        locked_until=bindparam("locked_until", type_=jobs.c.locked_until.type)
    )


async def finish_batch(
    uow: UnitOfWork,
    finished: Sequence[Job],
    retries: Sequence[Mapping[str, Any]],
    failures: Sequence[Mapping[str, Any]],
    *,
    kind: str,
    worker_id: str,
    failed_groups: bool,
) -> None:
    """The outcomes of a batch of jobs of `kind` the handler did not finish itself: jobs done
    (deleted), run again (`reschedule_params`), failed (`failed_params`; `failed_groups`: one of
    them has a group)."""
    if finished:
        params = {"job_ids": [j.id for j in finished], "worker_id": worker_id}
        done = (await uow.conn.execute(_COMPLETE_MANY, params)).rowcount
        if done != len(finished):
            log.warning("%d job(s) %s: lease lost", len(finished) - done, finished[0].kind)
        if any(j.group_key is not None for j in finished):
            uow.wake((kind,))
    if retries:
        await uow.conn.execute(_RESCHEDULE, retries)
        uow.note_due(min(r["next_run_at"] for r in retries))
        uow.wake((kind,))
    if failures:
        await uow.conn.execute(_MARK_FAILED, failures)
        if failed_groups:
            uow.wake((kind,))


async def failed_jobs(db: Database, kind: str | None = None) -> list[RowMapping]:
    """Jobs that ran out of attempts or failed permanently, oldest first."""
    async with db.transaction() as uow:
        q = select(jobs).where(jobs.c.status == "failed")
        if kind:
            q = q.where(jobs.c.kind == kind)
        return list((await uow.conn.execute(q.order_by(jobs.c.id))).mappings().all())
