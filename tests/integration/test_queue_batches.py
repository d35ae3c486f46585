"""Batch job kinds on a real database (SQLite file and PostgreSQL): chunks of one kind per task,
effects and completions in the handler's last transaction, per-job outcomes recorded together,
one bad job isolated from its batch, leases lost mid-batch, group order and shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text, update

from signalpost.kit.clock import utcnow
from signalpost.kit.db import Database
from signalpost.kit.queue import (
    SLICE_JOBS,
    Job,
    JobError,
    JobKind,
    Outcomes,
    PermanentJobError,
    RetryLater,
    RetryPolicy,
    Worker,
    claim,
    complete_many_within,
    enqueue_items,
    enqueue_many,
    failed_jobs,
    held,
)
from signalpost.models import jobs
from tests.integration.test_queue import (
    arun,
    db_url,  # noqa: F401  (the module's migrated database)
    eventually,
    job_rows,
    job_runs,
    no_jobs_left,
    running,
)

BatchFn = Callable[[Database, list[Job]], Awaitable[Outcomes | None]]


async def enqueue_n(db: Database, kind: str, n: int, **extra: Any) -> list[int]:
    async with db.transaction() as uow:
        await enqueue_many(uow, [{"kind": kind, "payload": {"i": i}, **extra} for i in range(n)])
    return [int(r["id"]) for r in await job_rows(db)]


async def record_runs(db: Database, batch: list[Job], worker: str = "w") -> None:
    """A batch handler's last transaction: the effects of the jobs still held, and their completion."""
    async with db.transaction() as uow:
        mine = await held(uow, batch)
        if mine:
            await uow.conn.execute(
                text("INSERT INTO job_runs (job_id, worker) VALUES (:j, :w)"),
                [{"j": j.id, "w": worker} for j in mine],
            )
        await complete_many_within(uow, mine)


def recording(sizes: list[int]) -> BatchFn:
    async def batch(db: Database, jobs_: list[Job]) -> None:
        sizes.append(len(jobs_))
        assert len({j.kind for j in jobs_}) == 1
        await record_runs(db, jobs_)

    return batch


def test_a_batch_kind_runs_its_jobs_in_chunks_and_completes_them_in_its_transaction(
    db_url: str,  # noqa: F811
) -> None:
    sizes: list[int] = []

    async def go(db: Database) -> None:
        ids = await enqueue_n(db, "t.batch", 25)
        kinds = {"t.batch": JobKind(batch=recording(sizes), batch_size=10)}
        await Worker(db, kinds, batch=50).run_until_idle(5)
        assert sorted(sizes) == [5, 10, 10]
        assert [j for j, _ in await job_runs(db)] == ids
        assert await job_rows(db) == []

    arun(db_url, go)


def test_batch_and_single_kinds_claimed_together_each_run_their_way(db_url: str) -> None:  # noqa: F811
    sizes: list[int] = []
    singles: list[int] = []

    async def single(db: Database, job: Job) -> None:
        singles.append(job.id)

    async def go(db: Database) -> None:
        async with db.transaction() as uow:
            await enqueue_many(
                uow,
                [{"kind": "t.batch" if i % 2 else "t.single", "payload": {}} for i in range(12)],
            )
        kinds = {
            "t.batch": JobKind(batch=recording(sizes), batch_size=100),
            "t.single": JobKind(detached=single),
        }
        worker = Worker(db, kinds, poll_interval=0.02)
        async with running(worker):
            await eventually(lambda: no_jobs_left(db))
        assert sum(sizes) == 6 and len(singles) == 6
        assert max(sizes) > 1

    arun(db_url, go)


def test_per_job_outcomes_of_a_batch_are_recorded_and_the_rest_complete(db_url: str) -> None:  # noqa: F811
    """One job throttled, one failing, one failing for good; the others complete with effects."""
    policy = RetryPolicy(max_attempts=3, base=5, factor=1)
    calls: list[list[int]] = []

    async def go(db: Database) -> None:
        ids = await enqueue_n(db, "t.mixed", 6)
        throttled, flaky, broken = ids[1], ids[2], ids[3]

        async def batch(db: Database, jobs_: list[Job]) -> Outcomes:
            calls.append([j.id for j in jobs_])
            outcomes: dict[int, Exception] = {
                throttled: RetryLater(30),
                flaky: JobError("upstream busy"),
                broken: PermanentJobError("bad number"),
            }
            await record_runs(db, [j for j in jobs_ if j.id not in outcomes])
            return outcomes

        kinds = {"t.mixed": JobKind(batch=batch, retry=policy)}
        await Worker(db, kinds).run_until_idle(5)
        assert calls == [ids]
        assert [j for j, _ in await job_runs(db)] == [ids[0], ids[4], ids[5]]
        rows = {r["id"]: r for r in await job_rows(db)}
        assert set(rows) == {throttled, flaky, broken}
        t, f, b = rows[throttled], rows[flaky], rows[broken]
        assert (t["status"], t["attempts"], t["last_error"], t["locked_by"]) == (
            "queued",
            0,
            None,
            None,
        )
        assert (t["run_at"] - t["updated_at"]).total_seconds() == pytest.approx(30, abs=0.01)
        assert (f["status"], f["attempts"], f["max_attempts"]) == ("queued", 1, 3)
        assert "JobError: upstream busy" in f["last_error"]
        assert (f["run_at"] - f["updated_at"]).total_seconds() == pytest.approx(5, abs=0.01)
        assert (b["status"], b["last_error"]) == ("failed", "PermanentJobError: bad number")

    arun(db_url, go)


def test_a_job_that_breaks_its_batch_is_run_alone_and_the_others_complete(db_url: str) -> None:  # noqa: F811
    policy = RetryPolicy(max_attempts=1)
    calls: list[int] = []

    async def batch(db: Database, jobs_: list[Job]) -> None:
        calls.append(len(jobs_))
        if any(j.payload["i"] == 3 for j in jobs_):
            raise KeyError("corrupt row")
        await record_runs(db, jobs_)

    async def go(db: Database) -> None:
        ids = await enqueue_n(db, "t.poison", 8)
        await Worker(db, {"t.poison": JobKind(batch=batch, retry=policy)}).run_until_idle(5)
        assert calls == [8, 1, 1, 1, 1, 1, 1, 1, 1]
        assert [j for j, _ in await job_runs(db)] == [i for i in ids if i != ids[3]]
        [row] = await failed_jobs(db)
        assert row["id"] == ids[3] and "KeyError" in row["last_error"]

    arun(db_url, go)


def test_a_transient_error_of_a_whole_batch_retries_every_job_of_it(db_url: str) -> None:  # noqa: F811
    policy = RetryPolicy(max_attempts=3, base=0.05, factor=1)
    calls: list[int] = []

    async def batch(db: Database, jobs_: list[Job]) -> None:
        calls.append(len(jobs_))
        if len(calls) == 1:
            raise JobError("carrier unavailable")
        await record_runs(db, jobs_)

    async def go(db: Database) -> None:
        ids = await enqueue_n(db, "t.down", 5)
        worker = Worker(db, {"t.down": JobKind(batch=batch, retry=policy)}, poll_interval=0.02)
        await worker.run_until_idle(5)
        assert calls == [5]  # not split: the error concerns them all
        assert {(r["status"], r["attempts"]) for r in await job_rows(db)} == {("queued", 1)}
        async with running(worker):
            await eventually(lambda: no_jobs_left(db))
        assert calls == [5, 5]
        assert [j for j, _ in await job_runs(db)] == ids

    arun(db_url, go)


def test_a_job_whose_lease_was_lost_mid_batch_is_left_to_its_new_worker(db_url: str) -> None:  # noqa: F811
    """The batch's other jobs complete; the lost one's effect is written once, by the thief."""
    stolen: list[Job] = []

    async def go(db: Database) -> None:
        ids = await enqueue_n(db, "t.lease", 4)

        async def batch(db: Database, jobs_: list[Job]) -> None:
            # While this worker is busy, its lease on the third job runs out and another takes it.
            async with db.transaction() as uow:
                await uow.conn.execute(
                    update(jobs).where(jobs.c.id == ids[2]).values(locked_until=jobs.c.run_at)
                )
            stolen.extend(await claim(db, "thief", 10, lease=30, kinds=["t.lease"]))
            await record_runs(db, jobs_, "first")

        worker = Worker(db, {"t.lease": JobKind(batch=batch)}, name="first")
        await worker.run_until_idle(5)
        assert [j.id for j in stolen] == [ids[2]]
        assert await job_runs(db) == [(i, "first") for i in ids if i != ids[2]]
        [row] = await job_rows(db)
        assert (row["id"], row["status"], row["locked_by"]) == (ids[2], "running", "thief")
        # The thief finishes it: its effect exists once.
        await record_runs(db, stolen, "thief")
        assert sorted(await job_runs(db)) == sorted(
            [(i, "first") for i in ids if i != ids[2]] + [(ids[2], "thief")]
        )
        assert await job_rows(db) == []

    arun(db_url, go)


def test_jobs_of_a_batch_whose_worker_kept_dying_fail_without_running(db_url: str) -> None:  # noqa: F811
    sizes: list[int] = []

    async def go(db: Database) -> None:
        ids = await enqueue_n(db, "t.dying", 3)
        async with db.transaction() as uow:
            await uow.conn.execute(update(jobs).where(jobs.c.id == ids[0]).values(max_attempts=1))
        # A worker claimed them all and died; its lease ran out.
        await claim(db, "dead", 10, lease=0.05, kinds=["t.dying"])
        await asyncio.sleep(0.1)
        await Worker(db, {"t.dying": JobKind(batch=recording(sizes))}).run_until_idle(5)
        assert sizes == [2]
        [row] = await failed_jobs(db)
        assert row["id"] == ids[0] and "worker lost" in row["last_error"]

    arun(db_url, go)


def test_batched_jobs_of_one_group_run_in_order_across_workers(db_url: str) -> None:  # noqa: F811
    order: dict[str, list[int]] = {}
    flaked: set[int] = set()

    async def batch(db: Database, jobs_: list[Job]) -> Outcomes:
        groups = [j.group_key for j in jobs_ if j.group_key]
        assert len(groups) == len(set(groups))  # never two of one group at once
        await asyncio.sleep(0.01)
        outcomes: dict[int, Exception] = {}
        for j in jobs_:
            if j.payload["seq"] == 2 and j.id not in flaked:
                flaked.add(j.id)
                outcomes[j.id] = JobError("first run fails")
        ok = [j for j in jobs_ if j.id not in outcomes]
        for j in ok:
            order.setdefault(str(j.group_key), []).append(j.payload["seq"])
        await record_runs(db, ok)
        return outcomes

    async def go(db: Database) -> None:
        async with db.transaction() as uow:
            await enqueue_many(
                uow,
                [
                    {"kind": "t.grouped", "payload": {"seq": seq}, "group_key": f"g{g}"}
                    for seq in range(5)
                    for g in range(10)
                ],
            )
        policy = RetryPolicy(max_attempts=3, base=0.05, factor=1)
        kinds = {"t.grouped": JobKind(batch=batch, retry=policy, batch_size=4)}
        workers = [Worker(db, kinds, poll_interval=0.02) for _ in range(3)]
        async with running(*workers):
            await eventually(lambda: no_jobs_left(db), timeout=20)
        assert order == {f"g{g}": list(range(5)) for g in range(10)}

    arun(db_url, go)


def test_stopping_a_worker_lets_its_batches_finish(db_url: str) -> None:  # noqa: F811
    started = asyncio.Event()

    async def go(db: Database) -> None:
        async def batch(db: Database, jobs_: list[Job]) -> None:
            started.set()
            await asyncio.sleep(0.3)
            await record_runs(db, jobs_)

        ids = await enqueue_n(db, "t.slow", 6)
        worker = Worker(db, {"t.slow": JobKind(batch=batch)}, poll_interval=0.02)
        task = asyncio.create_task(worker.run())
        await asyncio.wait_for(started.wait(), 5)
        worker.stop()
        await asyncio.wait_for(task, 5)
        assert [j for j, _ in await job_runs(db)] == ids
        assert await job_rows(db) == []

    arun(db_url, go)


def test_a_batch_kind_needs_one_handler_and_a_positive_size() -> None:
    async def batch(db: Database, jobs_: list[Job]) -> None:
        return None

    async def detached(db: Database, job: Job) -> None:
        return None

    with pytest.raises(ValueError):
        JobKind(batch=batch, detached=detached)
    with pytest.raises(ValueError):
        JobKind(batch=batch, batch_size=0)


@pytest.mark.parametrize("linger", [0.0, 0.3])
def test_a_busy_worker_lingers_so_jobs_arriving_one_by_one_run_as_one_batch(
    db_url: str,  # noqa: F811
    linger: float,
) -> None:
    """Idle, a worker claims a new job at once; busy, it lets the next ones gather for `linger`."""
    sizes: list[int] = []
    seen: list[float] = []

    async def batch(db: Database, jobs_: list[Job]) -> None:
        sizes.append(len(jobs_))
        seen.append(asyncio.get_running_loop().time())
        await record_runs(db, jobs_)

    async def go(db: Database) -> None:
        kinds = {"t.trickle": JobKind(batch=batch, batch_size=100)}
        loop = asyncio.get_running_loop()
        async with running(Worker(db, kinds, poll_interval=0.05, linger=linger)):
            start = loop.time()
            await enqueue_n(db, "t.trickle", 1)
            await eventually(lambda: sizes)
            assert seen[0] - start < 0.25  # idle: no lingering for the first job
            for _ in range(8):  # then one job every 20 ms
                await asyncio.sleep(0.02)
                async with db.transaction() as uow:
                    await enqueue_many(uow, [{"kind": "t.trickle", "payload": {}}])
            await eventually(lambda: sum(sizes) == 9)
        assert await eventually(lambda: no_jobs_left(db))

    arun(db_url, go)
    if linger:
        assert len(sizes) <= 3, sizes  # the eight gathered into one or two batches
    else:
        assert len(sizes) >= 5, sizes  # each claimed on its own (or nearly)


def test_a_worker_told_the_api_is_still_busy_claims_only_a_slice(db_url: str) -> None:  # noqa: F811
    sizes: list[int] = []
    asked: list[int] = []

    async def still_busy() -> bool:
        asked.append(1)
        return False

    async def go(db: Database) -> None:
        await enqueue_n(db, "t.slice", 40)
        kinds = {"t.slice": JobKind(batch=recording(sizes), batch_size=100)}
        worker = Worker(db, kinds, batch=80, poll_interval=0.05, before_claim=still_busy)
        async with running(worker):
            await eventually(lambda: sum(sizes) == 40)

    arun(db_url, go)
    assert max(sizes) <= SLICE_JOBS and len(sizes) >= 4
    assert asked


def test_an_idle_worker_wakes_when_a_job_queued_for_later_is_due(db_url: str) -> None:  # noqa: F811
    """Not a whole poll interval later: a receipt due in 100 ms runs about then."""
    ran: list[float] = []

    async def batch(db: Database, jobs_: list[Job]) -> None:
        ran.append(asyncio.get_running_loop().time())
        await record_runs(db, jobs_)

    async def go(db: Database) -> float:
        kinds = {"t.later": JobKind(batch=batch, batch_size=10)}
        loop = asyncio.get_running_loop()
        async with running(Worker(db, kinds, poll_interval=3.0)):
            await asyncio.sleep(0.1)  # the worker is idle, waiting
            start = loop.time()
            async with db.transaction() as uow:
                await enqueue_many(uow, [{"kind": "t.later", "payload": {}, "delay": 0.1}])
            await eventually(lambda: ran, timeout=5)
        return ran[0] - start

    took = arun(db_url, go)
    assert 0.09 <= took < 1.0, took


def test_items_queued_in_one_transaction_share_jobs_and_batches_count_items(
    db_url: str,  # noqa: F811
) -> None:
    seen: list[list[int]] = []  # the items of each batch the handler got

    async def batch(db: Database, jobs_: list[Job]) -> None:
        seen.append([i for j in jobs_ for i in j.payload["items"]])
        await record_runs(db, jobs_)

    async def go(db: Database) -> list[Any]:
        soon = utcnow()
        async with db.transaction() as uow:
            for i in range(7):  # as seven requests of one group commit would
                enqueue_items(uow, "t.items", "items", [i], run_at=soon, per_job=3)
            enqueue_items(uow, "t.items", "items", [100], run_at=soon + timedelta(seconds=0.2))
        rows = await job_rows(db)
        kinds = {
            "t.items": JobKind(batch=batch, batch_size=4, size=lambda j: len(j.payload["items"]))
        }
        async with running(Worker(db, kinds, poll_interval=0.05)):
            await eventually(lambda: sum(len(b) for b in seen) == 8)
        return rows

    rows = arun(db_url, go)
    assert [r["payload"]["items"] for r in rows] == [[0, 1, 2], [3, 4, 5], [6], [100]]
    assert sorted(i for b in seen for i in b) == [0, 1, 2, 3, 4, 5, 6, 100]
    # A batch takes jobs while their items fit in `batch_size` (4): never jobs of 3 and 3 together.
    assert all(len(b) <= 4 for b in seen), seen
