"""Lanes of the job queue: kinds of one lane are claimed and run by that lane's workers, so jobs
stuck on something slow (a webhook receiver) never take the places of other kinds' jobs."""

from __future__ import annotations

import asyncio

from signalpost.kit.db import Database, UnitOfWork
from signalpost.kit.queue import DEFAULT_LANE, Job, JobKind, Worker, enqueue, lanes
from tests.integration.test_queue import arun, db_url, eventually, running

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
