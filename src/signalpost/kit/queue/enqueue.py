"""Enqueueing jobs in the caller's unit of work, and settling jobs that carry many items."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from signalpost.kit.clock import utcnow
from signalpost.kit.db import UnitOfWork
from signalpost.kit.queue import notify
from signalpost.kit.queue.retry import RetryLater
from signalpost.kit.queue.store import Job, complete_many_within
from signalpost.models import jobs

log = logging.getLogger("signalpost.queue")

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
    first_due = min(r["run_at"] for r in rows)
    kinds = {r["kind"] for r in rows}
    uow.note_due(first_due)
    notify.announce(uow, first_due.timestamp(), kinds)
    if defer:
        uow.defer_insert(jobs, rows)
    else:
        await uow.conn.insert_many(jobs, rows)
    uow.wake(kinds)


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
