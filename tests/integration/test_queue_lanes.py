"""Lanes of the job queue: kinds of one lane are claimed and run by that lane's workers, so jobs
stuck on something slow (a webhook receiver) never take the places of other kinds' jobs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from signalpost.kit.db import Database, UnitOfWork
from signalpost.kit.queue import DEFAULT_LANE, Job, JobKind, Worker, enqueue, lanes
from signalpost.kit.queue import worker as worker_module
from tests.integration.test_queue import arun, db_url, enqueue_one, eventually, running

__all__ = ["db_url"]  # the module's migrated database (fixture)


def test_kinds_are_split_by_lane() -> None:
    async def handler(uow: UnitOfWork, job: Job) -> None:
        return None

    kinds = {
        "a": JobKind(handler=handler),
        "b": JobKind(handler=handler, lane="slow"),
        "c": JobKind(handler=handler),
    }
    assert {lane: sorted(k) for lane, k in lanes(kinds).items()} == {
        DEFAULT_LANE: ["a", "c"],
        "slow": ["b"],
    }


def test_a_full_lane_does_not_hold_up_another(db_url: str) -> None:
    """Slow jobs fill their lane's places; jobs of the other lane, queued after them, run at once."""
    release = asyncio.Event()
    fast_done: list[int] = []
    slow_started: list[int] = []

    async def slow(db: Database, job: Job) -> None:
        slow_started.append(job.id)
        await release.wait()

    async def fast(uow: UnitOfWork, job: Job) -> None:
        fast_done.append(job.id)

    kinds = {"t.slow": JobKind(detached=slow, lane="slow"), "t.fast": JobKind(handler=fast)}

    async def go(db: Database) -> None:
        workers = [
            Worker(db, lane_kinds, concurrency=2, poll_interval=0.02)
            for lane_kinds in lanes(kinds).values()
        ]
        async with running(*workers):
            async with db.transaction() as uow:
                for _ in range(4):
                    await enqueue(uow, "t.slow", {})
            await eventually(lambda: len(slow_started) == 2)  # the slow lane is full
            async with db.transaction() as uow:
                for _ in range(3):
                    await enqueue(uow, "t.fast", {})
            await eventually(lambda: len(fast_done) == 3, timeout=5)
            assert len(slow_started) == 2
            release.set()
            await eventually(lambda: len(slow_started) == 4)

    arun(db_url, go)


def test_a_kind_registered_after_the_workers_start_is_run(db_url: str) -> None:
    """A lane's workers see kinds added to the registry later (an SMPP carrier registers its
    submit kind only once a bind is up), and stop claiming a kind taken out of it."""
    done: list[int] = []

    async def handler(uow: UnitOfWork, job: Job) -> None:
        done.append(job.id)

    firsts: list[int] = []

    async def first(uow: UnitOfWork, job: Job) -> None:
        firsts.append(job.id)

    kinds: dict[str, JobKind] = {"t.first": JobKind(handler=first)}
    workers_kinds = lanes(kinds)

    async def go(db: Database) -> None:
        workers = [Worker(db, k, poll_interval=0.02) for k in workers_kinds.values()]
        async with running(*workers):
            kinds["t.later"] = JobKind(handler=handler)
            async with db.transaction() as uow:
                await enqueue(uow, "t.later", {})
            await eventually(lambda: len(done) == 1, timeout=5)
            del kinds["t.later"]
            async with db.transaction() as uow:
                await enqueue(uow, "t.later", {})
            async with db.transaction() as uow:
                await enqueue(uow, "t.first", {})
            # The worker claimed since (it ran the later job of a kind it still has).
            await eventually(lambda: len(firsts) == 1, timeout=5)
            assert len(done) == 1

    arun(db_url, go)


def test_queued_jobs_wake_only_the_lanes_that_run_their_kind(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jobs queued by this process, and on PostgreSQL by another (its notification names their
    kinds), wake the idle workers of their own lane; the other lane's workers, woken for nothing,
    would only claim nothing (a database round trip each)."""
    claims: dict[str, int] = {}
    real_claim = worker_module.claim

    async def counting_claim(db: Database, worker_id: str, *args: Any, **kwargs: Any) -> Any:
        claims[worker_id] = claims.get(worker_id, 0) + 1
        return await real_claim(db, worker_id, *args, **kwargs)

    monkeypatch.setattr(worker_module, "claim", counting_claim)
    done: list[int] = []

    async def handler(uow: UnitOfWork, job: Job) -> None:
        done.append(job.id)

    kinds = {"t.send": JobKind(handler=handler), "t.hook": JobKind(handler=handler, lane="hooks")}
    other_process = db_url.startswith("postgresql")  # SQLite has no notifications

    async def go(db: Database) -> dict[str, int]:
        workers = {
            lane: Worker(db, k, name=lane, poll_interval=30, listening_poll_interval=30)
            for lane, k in lanes(kinds).items()
        }
        async with running(*workers.values()):
            await asyncio.sleep(0.5)  # started (and listening), their first claims made
            before = dict(claims)
            for _ in range(3):
                await enqueue_one(db, "t.send")
            await eventually(lambda: len(done) == 3, timeout=5)
            if other_process:
                other = Database(db_url)
                try:
                    for _ in range(3):
                        await enqueue_one(other, "t.send")
                finally:
                    await other.dispose()
                await eventually(lambda: len(done) == 6, timeout=5)
            await asyncio.sleep(0.3)
        return {lane: claims.get(lane, 0) - before.get(lane, 0) for lane in workers}

    woke = arun(db_url, go)
    assert woke[DEFAULT_LANE] >= 1
    assert woke["hooks"] == 0
