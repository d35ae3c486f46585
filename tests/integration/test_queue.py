"""The durable job queue on a real database (SQLite file and PostgreSQL): transactional enqueue,
retries with backoff, permanent failures, `RetryLater`, per-group ordering, lease expiry and
concurrent claiming by several workers. Real queue code, real migrations, test job kinds."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest
from sqlalchemy import delete, func, select, text

from signalpost.kit import migrate
from signalpost.kit.clock import utcnow
from signalpost.kit.db import Database, UnitOfWork
from signalpost.kit.queue import (
    Job,
    JobError,
    JobKind,
    LeaseLost,
    PermanentJobError,
    RetryLater,
    RetryPolicy,
    Worker,
    claim,
    complete,
    enqueue,
    enqueue_many,
    extend_leases,
    failed_jobs,
    held,
)
from signalpost.kit.queue import worker as worker_module
from signalpost.models import jobs

T = TypeVar("T")


@pytest.fixture(scope="module")
def db_url(database_url: str) -> str:
    """The module's database, migrated, with a `job_runs` table the test kinds write to."""

    async def go() -> None:
        db = Database(database_url)
        try:
            await migrate.upgrade(db)
            async with db.transaction() as uow:
                await uow.conn.execute(
                    text("CREATE TABLE job_runs (job_id BIGINT NOT NULL, worker VARCHAR(64))")
                )
        finally:
            await db.dispose()

    asyncio.run(go())
    return database_url


def arun(url: str, fn: Callable[[Database], Awaitable[T]], timeout: float = 30) -> T:
    """Run `fn(db)` on a fresh engine over an empty jobs table, bounded in time."""

    async def go() -> T:
        db = Database(url)
        try:
            async with db.transaction() as uow:
                await uow.conn.execute(delete(jobs))
                await uow.conn.execute(text("DELETE FROM job_runs"))
            return await asyncio.wait_for(fn(db), timeout)
        finally:
            await db.dispose()

    return asyncio.run(go())


async def eventually(fn: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Call `fn` (sync or async) until it returns something truthy; fail after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while loop.time() < deadline:
        last = fn()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


async def run_until(worker: Worker, done: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let `worker` run whatever is due, again and again, until `done()`."""

    async def step() -> bool:
        await worker.run_until_idle(5)
        return done()

    await eventually(step, timeout)


@asynccontextmanager
async def running(*workers: Worker) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield
    finally:
        for w in workers:
            w.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)


async def job_rows(db: Database) -> list[Any]:
    async with db.transaction() as uow:
        return list((await uow.conn.execute(select(jobs).order_by(jobs.c.id))).mappings().all())


async def one_job(db: Database) -> Any:
    rows = await job_rows(db)
    assert len(rows) == 1, rows
    return rows[0]


async def no_jobs_left(db: Database) -> bool:
    return not await job_rows(db)


async def record_run(uow: UnitOfWork, job: Job, worker: str) -> None:
    await uow.conn.execute(
        text("INSERT INTO job_runs (job_id, worker) VALUES (:j, :w)"), {"j": job.id, "w": worker}
    )


async def job_runs(db: Database) -> list[tuple[int, str]]:
    async with db.transaction() as uow:
        rows = await uow.conn.execute(text("SELECT job_id, worker FROM job_runs ORDER BY job_id"))
        return [(int(r[0]), str(r[1])) for r in rows]


async def enqueue_one(db: Database, kind: str, **kwargs: Any) -> int:
    """Queue a job; its id, read in the same transaction (a running worker may have run and
    deleted the job by the time a later transaction looks)."""
    async with db.transaction() as uow:
        await enqueue(uow, kind, kwargs.pop("payload", {}), **kwargs)
        return int((await uow.conn.execute(select(func.max(jobs.c.id)))).scalar_one())


class Boom(Exception):
    pass


# --- the transactional outbox -----------------------------------------------------------------


def test_a_rolled_back_enqueue_leaves_no_job(db_url: str) -> None:
    ran: list[int] = []

    async def handler(uow: UnitOfWork, job: Job) -> None:
        ran.append(job.id)

    async def go(db: Database) -> None:
        with pytest.raises(Boom):
            async with db.transaction() as uow:
                await enqueue(uow, "t.record", {"n": 1})
                await enqueue_many(uow, [{"kind": "t.record", "payload": {"n": 2}}])
                inside = (await uow.conn.execute(select(jobs.c.id))).all()
                assert len(inside) == 2  # written, but only inside the transaction
                raise Boom
        assert await job_rows(db) == []
        await Worker(db, {"t.record": JobKind(handler=handler)}).run_until_idle(5)
        assert ran == []

    arun(db_url, go)


def test_a_committed_job_is_run_by_a_worker_and_then_deleted(db_url: str) -> None:
    seen: list[tuple[str, dict[str, Any], int]] = []

    async def handler(uow: UnitOfWork, job: Job) -> None:
        seen.append((job.kind, job.payload, job.attempts))
        await record_run(uow, job, "w")

    async def go(db: Database) -> None:
        worker = Worker(db, {"t.record": JobKind(handler=handler)}, poll_interval=0.05)
        async with running(worker):
            async with db.transaction() as uow:
                await enqueue(uow, "t.record", {"to": "+13125550100", "parts": [1, 2]})
            await eventually(lambda: no_jobs_left(db))
        assert seen == [("t.record", {"to": "+13125550100", "parts": [1, 2]}, 1)]
        assert len(await job_runs(db)) == 1

    arun(db_url, go)


def test_a_job_scheduled_for_later_waits_for_its_time(db_url: str) -> None:
    ran: list[float] = []

    async def handler(uow: UnitOfWork, job: Job) -> None:
        ran.append(asyncio.get_running_loop().time())

    async def go(db: Database) -> None:
        worker = Worker(db, {"t.later": JobKind(handler=handler)}, poll_interval=0.05)
        start = asyncio.get_running_loop().time()
        await enqueue_one(db, "t.later", delay=0.4)
        await worker.run_until_idle(5)
        assert ran == []  # not due yet
        async with running(worker):
            await eventually(lambda: ran)
        assert ran[0] - start >= 0.4

    arun(db_url, go)


def test_a_job_falling_due_while_a_claim_waits_starts_at_its_time(db_url: str) -> None:
    """A claim that began before a queued job was due and ended after it (it waited for the
    database) finds nothing; the job still starts then, not at the worker's next poll."""
    ran: list[float] = []

    async def handler(uow: UnitOfWork, job: Job) -> None:
        ran.append(asyncio.get_running_loop().time())

    async def go(db: Database) -> float:
        loop = asyncio.get_running_loop()
        worker = Worker(db, {"t.later": JobKind(handler=handler)}, poll_interval=30.0)
        async with running(worker):
            await asyncio.sleep(0.3)  # its first claim made: it waits for jobs, or 30 s
            queued = loop.time()
            await enqueue_one(db, "t.later", delay=0.5)  # wakes it: nothing is due yet
            await asyncio.sleep(0.2)
            async with db.transaction() as uow:
                if not db.is_sqlite:  # (on SQLite this transaction holds the write lock)
                    await uow.conn.execute(text("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE"))
                db.jobs_queued()  # as another enqueue would: it claims, and waits for this
                await asyncio.sleep(0.6)  # past the job's time
            await eventually(lambda: ran, timeout=5)
        return ran[0] - queued

    started_after = arun(db_url, go)
    assert 0.5 <= started_after < 3.0


def test_an_idle_worker_polls_seldom_while_it_listens(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL, enqueues of other processes wake an idle worker through LISTEN/NOTIFY, so it
    polls at `listening_poll_interval` (a safety net), not `poll_interval`; on SQLite, with nothing
    to listen to, it polls at `poll_interval`. Either way another process's job starts at once."""
    claims: list[float] = []
    real_claim = worker_module.claim

    async def counting_claim(*args: Any, **kwargs: Any) -> list[Job]:
        claims.append(asyncio.get_running_loop().time())
        return await real_claim(*args, **kwargs)

    monkeypatch.setattr(worker_module, "claim", counting_claim)
    ran: list[float] = []

    async def handler(uow: UnitOfWork, job: Job) -> None:
        ran.append(asyncio.get_running_loop().time())

    async def go(db: Database) -> tuple[int, float]:
        kinds = {"t.record": JobKind(handler=handler)}
        worker = Worker(db, kinds, poll_interval=0.05, listening_poll_interval=30.0)
        async with running(worker):
            await asyncio.sleep(1.0)  # started, listening (PostgreSQL), its first claims made
            before = len(claims)
            await asyncio.sleep(1.5)
            idle_claims = len(claims) - before
            other = Database(db_url)  # another process's enqueue: its own notifications
            try:
                queued = asyncio.get_running_loop().time()
                await enqueue_one(other, "t.record")
            finally:
                await other.dispose()
            await eventually(lambda: ran)
        return idle_claims, ran[0] - queued

    idle_claims, started_after = arun(db_url, go)
    if db_url.startswith("postgresql"):
        assert idle_claims == 0
    else:
        assert idle_claims >= 10  # every 0.05 s: 30 in 1.5 s on a quiet machine
    assert started_after < 1.0


# --- failures and retries ---------------------------------------------------------------------


def test_a_failing_job_backs_off_then_fails_visibly(db_url: str) -> None:
    policy = RetryPolicy(max_attempts=3, base=0.2, factor=2, cap=10)
    calls: list[int] = []

    async def handler(uow: UnitOfWork, job: Job) -> None:
        calls.append(job.attempts)
        raise JobError(f"upstream said no (run {job.attempts})")

    async def go(db: Database) -> None:
        worker = Worker(db, {"t.flaky": JobKind(handler=handler, retry=policy)})
        job_id = await enqueue_one(db, "t.flaky", payload={"x": 1})

        for attempt, delay in ((1, 0.2), (2, 0.4)):
            # The job runs once as soon as it is due, and not again before its backoff has passed.
            await run_until(worker, lambda n=attempt: len(calls) >= n)
            await worker.run_until_idle(5)
            assert calls == list(range(1, attempt + 1))
            row = await one_job(db)
            assert row["id"] == job_id
            assert row["status"] == "queued"
            assert row["attempts"] == attempt
            assert row["max_attempts"] == 3
            assert f"upstream said no (run {attempt})" in row["last_error"]
            assert row["locked_by"] is None
            backoff = (row["run_at"] - row["updated_at"]).total_seconds()
            assert backoff == pytest.approx(delay, abs=0.002)
            assert row["run_at"] > utcnow()

        await run_until(worker, lambda: len(calls) >= 3)
        assert calls == [1, 2, 3]
        row = await one_job(db)
        assert row["status"] == "failed"
        assert row["attempts"] == 3
        assert "upstream said no (run 3)" in row["last_error"]
        failed = await failed_jobs(db, "t.flaky")
        assert [f["id"] for f in failed] == [job_id]
        assert await failed_jobs(db, "t.other") == []
        # A failed job is kept, and never run again.
        await worker.run_until_idle(5)
        assert calls == [1, 2, 3]

    arun(db_url, go)


def test_the_limit_given_at_enqueue_beats_the_kinds_policy(db_url: str) -> None:
    calls: list[int] = []

    async def handler(uow: UnitOfWork, job: Job) -> None:
        calls.append(job.attempts)
        raise JobError("no")

    async def go(db: Database) -> None:
        policy = RetryPolicy(max_attempts=5, base=0, factor=1)
        worker = Worker(db, {"t.limited": JobKind(handler=handler, retry=policy)})
        await enqueue_one(db, "t.limited", max_attempts=2)
        await run_until(worker, lambda: len(calls) >= 2)
        await worker.run_until_idle(5)
        assert calls == [1, 2]
        assert [r["attempts"] for r in await failed_jobs(db)] == [2]

    arun(db_url, go)


def test_an_unexpected_exception_is_retried_like_a_job_error(db_url: str) -> None:
    calls: list[int] = []

    async def detached(db: Database, job: Job) -> None:
        calls.append(job.attempts)
        if job.attempts == 1:
            raise KeyError("missing")

    async def go(db: Database) -> None:
        policy = RetryPolicy(max_attempts=3, base=0, factor=1)
        worker = Worker(db, {"t.bug": JobKind(detached=detached, retry=policy)})
        await enqueue_one(db, "t.bug")
        await run_until(worker, lambda: len(calls) >= 2)
        assert calls == [1, 2]
        assert await job_rows(db) == []

    arun(db_url, go)


def test_retry_later_does_not_count_an_attempt(db_url: str) -> None:
    calls: list[int] = []

    async def detached(db: Database, job: Job) -> None:
        calls.append(job.attempts)
        if len(calls) <= 3:
            raise RetryLater(0.05)

    async def go(db: Database) -> None:
        worker = Worker(db, {"t.later": JobKind(detached=detached)}, poll_interval=0.02)
        await enqueue_one(db, "t.later", max_attempts=1)
        await worker.run_until_idle(5)
        row = await one_job(db)
        assert (row["status"], row["attempts"], row["last_error"]) == ("queued", 0, None)
        assert (row["run_at"] - row["updated_at"]).total_seconds() == pytest.approx(0.05, abs=0.002)
        async with running(worker):
            await eventually(lambda: no_jobs_left(db))
        # Four runs of a job allowed one attempt: the three postponed runs did not count.
        assert calls == [1, 1, 1, 1]

    arun(db_url, go)


def test_a_permanent_error_fails_the_job_at_once(db_url: str) -> None:
    calls: list[int] = []

    async def handler(uow: UnitOfWork, job: Job) -> None:
        calls.append(job.attempts)
        await record_run(uow, job, "effect that must not persist")
        raise PermanentJobError("number is not a mobile")

    async def go(db: Database) -> None:
        worker = Worker(db, {"t.perm": JobKind(handler=handler)})
        job_id = await enqueue_one(db, "t.perm", max_attempts=5)
        await worker.run_until_idle(5)
        assert calls == [1]
        [row] = await failed_jobs(db)
        assert row["id"] == job_id
        assert row["attempts"] == 1
        assert row["last_error"] == "PermanentJobError: number is not a mobile"
        assert await job_runs(db) == []  # the handler's writes rolled back with the failure

    arun(db_url, go)


def test_a_job_of_an_unknown_kind_stays_queued(db_url: str) -> None:
    async def handler(uow: UnitOfWork, job: Job) -> None:
        pass

    async def go(db: Database) -> None:
        await enqueue_one(db, "t.newer_version")
        await Worker(db, {"t.known": JobKind(handler=handler)}).run_until_idle(5)
        row = await one_job(db)
        assert (row["status"], row["attempts"]) == ("queued", 0)

    arun(db_url, go)


# --- ordering within a group ------------------------------------------------------------------


def test_jobs_sharing_a_group_key_run_one_at_a_time_in_id_order(db_url: str) -> None:
    order: dict[str, list[int]] = {}
    active: dict[str, int] = {}
    overlap: list[str] = []
    free_overlap: list[int] = []
    flaked: set[int] = set()

    async def detached(db: Database, job: Job) -> None:
        group = job.group_key or "none"
        active[group] = active.get(group, 0) + 1
        if group != "none" and active[group] > 1:
            overlap.append(group)
        free_overlap.append(active.get("none", 0))
        try:
            await asyncio.sleep(0.01)  # give other workers the chance to overlap
            if job.payload.get("flaky") and job.id not in flaked:
                flaked.add(job.id)
                raise JobError("first run fails")
            order.setdefault(group, []).append(job.payload["seq"])
        finally:
            active[group] -= 1

    async def go(db: Database) -> None:
        specs: list[dict[str, Any]] = []
        for seq in range(8):
            for group in ("msg-a", "msg-b", None):
                specs.append(
                    {
                        "kind": "t.ordered",
                        "payload": {"seq": seq, "flaky": group == "msg-b" and seq == 2},
                        "group_key": group,
                    }
                )
        async with db.transaction() as uow:
            await enqueue_many(uow, specs)
        policy = RetryPolicy(max_attempts=3, base=0.1, factor=1)
        kinds = {"t.ordered": JobKind(detached=detached, retry=policy)}
        workers = [Worker(db, kinds, concurrency=8, poll_interval=0.02) for _ in range(3)]
        async with running(*workers):
            await eventually(lambda: no_jobs_left(db))
        assert overlap == []
        assert order["msg-a"] == list(range(8))
        # msg-b's third job failed once and was retried: the ones after it waited for it.
        assert order["msg-b"] == list(range(8))
        assert sorted(order["none"]) == list(range(8))
        assert max(free_overlap) > 1  # jobs without a group do run concurrently

    arun(db_url, go)


def test_a_failed_job_no_longer_holds_up_its_group(db_url: str) -> None:
    ran: list[int] = []

    async def detached(db: Database, job: Job) -> None:
        if job.payload["seq"] == 0:
            raise PermanentJobError("bad")
        ran.append(job.payload["seq"])

    async def go(db: Database) -> None:
        async with db.transaction() as uow:
            await enqueue_many(
                uow, [{"kind": "t.g", "payload": {"seq": i}, "group_key": "g"} for i in range(3)]
            )
        worker = Worker(db, {"t.g": JobKind(detached=detached)})
        await run_until(worker, lambda: len(ran) == 2)
        assert ran == [1, 2]
        assert [r["status"] for r in await job_rows(db)] == ["failed"]

    arun(db_url, go)


# --- leases -----------------------------------------------------------------------------------


def test_a_job_whose_worker_died_is_claimed_again_after_its_lease(db_url: str) -> None:
    ran: list[tuple[int, str]] = []

    async def handler(uow: UnitOfWork, job: Job) -> None:
        ran.append((job.attempts, "survivor"))
        await record_run(uow, job, "survivor")

    async def go(db: Database) -> None:
        job_id = await enqueue_one(db, "t.lease")
        # A worker claims the job and dies: nobody renews its lease.
        claimed_at = asyncio.get_running_loop().time()
        [dead] = await claim(db, "dead-worker", 10, lease=0.4, kinds=["t.lease"])
        assert dead.id == job_id
        survivor = Worker(
            db, {"t.lease": JobKind(handler=handler)}, name="survivor", poll_interval=0.02
        )
        async with running(survivor):
            await eventually(lambda: ran)
        assert asyncio.get_running_loop().time() - claimed_at >= 0.4
        assert ran == [(2, "survivor")]  # the dead worker's run counted as an attempt
        assert await job_runs(db) == [(job_id, "survivor")]
        assert await job_rows(db) == []

        # The dead worker, had it only been slow, can no longer complete the job.
        with pytest.raises(LeaseLost):
            async with db.transaction() as uow:
                await record_run(uow, dead, "dead-worker")
                await complete(uow, dead, "dead-worker")
        assert await job_runs(db) == [(job_id, "survivor")]

    arun(db_url, go)


def test_a_live_worker_keeps_the_lease_of_a_slow_job(db_url: str) -> None:
    ran: list[str] = []

    def kind(name: str) -> JobKind:
        async def detached(db: Database, job: Job) -> None:
            ran.append(name)
            await asyncio.sleep(2.0)  # the job itself is slow: 4 leases long

        return JobKind(detached=detached)

    async def go(db: Database) -> None:
        first = Worker(db, {"t.slow": kind("first")}, lease=0.5, poll_interval=0.02)
        second = Worker(db, {"t.slow": kind("second")}, lease=0.5, poll_interval=0.02)
        await enqueue_one(db, "t.slow")
        async with running(first):
            await eventually(lambda: ran)
            async with running(second):
                await eventually(lambda: no_jobs_left(db))
        assert ran == ["first"]

    arun(db_url, go)


def test_renewing_leases_never_waits_for_a_batch_finishing_its_jobs(db_url: str) -> None:
    """The lease keeper runs beside the worker's batches. Were it to wait for a job row that a
    batch's last unit of work has locked (`held`, in id order) while holding another (it takes
    them in the table's order), the two could deadlock, and the batch rolled back after its
    effects were made (seen with webhook deliveries on PostgreSQL: POSTed again one by one)."""

    async def leases(db: Database) -> dict[int, Any]:
        return {r["id"]: r["locked_until"] for r in await job_rows(db)}

    async def go(db: Database) -> None:
        first = await enqueue_one(db, "t.renew")
        second = await enqueue_one(db, "t.renew")
        batch = await claim(db, "w", 10, lease=30, kinds=["t.renew"])
        assert [j.id for j in batch] == [first, second]
        before = await leases(db)
        if db.is_sqlite:  # one writer at a time: no row locks to wait for
            assert await extend_leases(db, {first, second}, "w", 60) == 2
            assert all(after > before[i] for i, after in (await leases(db)).items())
        else:
            async with db.transaction() as uow:
                # The first job's batch is in its last unit of work: its row is locked.
                assert [j.id for j in await held(uow, batch[:1])] == [first]
                renewed = await asyncio.wait_for(extend_leases(db, {first, second}, "w", 60), 5)
            assert renewed == 1
            after = await leases(db)
            assert after[first] == before[first]  # left to its batch, renewed next time if need be
            assert after[second] > before[second]
        assert await extend_leases(db, {first, second}, "other-worker", 60) == 0

    arun(db_url, go)


def test_a_job_that_keeps_losing_its_worker_fails_after_max_attempts(db_url: str) -> None:
    ran: list[int] = []

    async def handler(uow: UnitOfWork, job: Job) -> None:
        ran.append(job.id)

    async def go(db: Database) -> None:
        job_id = await enqueue_one(db, "t.poison", max_attempts=2)
        for n in (1, 2):
            claimed = await eventually(
                lambda n=n: claim(db, f"dead-{n}", 1, lease=0.05, kinds=["t.poison"])
            )
            assert claimed[0].attempts == n
        await eventually(lambda: _lease_expired(db))
        await Worker(db, {"t.poison": JobKind(handler=handler)}).run_until_idle(5)
        assert ran == []
        [row] = await failed_jobs(db)
        assert row["id"] == job_id
        assert "worker lost" in row["last_error"]

    arun(db_url, go)


async def _lease_expired(db: Database) -> bool:
    row = (await job_rows(db))[0]
    return bool(row["locked_until"] < utcnow())


# --- concurrency ------------------------------------------------------------------------------


def test_many_workers_in_one_process_run_each_job_exactly_once(db_url: str) -> None:
    """Several workers on one engine (SQLite: one writer at a time through the process lock)."""
    n = 200
    claimed_by: dict[int, list[str]] = {}

    def kind(name: str) -> JobKind:
        async def handler(uow: UnitOfWork, job: Job) -> None:
            claimed_by.setdefault(job.id, []).append(name)
            await record_run(uow, job, name)

        return JobKind(handler=handler)

    async def go(db: Database) -> None:
        async with db.transaction() as uow:
            await enqueue_many(uow, [{"kind": "t.many", "payload": {"i": i}} for i in range(n)])
        workers = [
            Worker(db, {"t.many": kind(f"w{i}")}, name=f"w{i}", batch=5, concurrency=5)
            for i in range(4)
        ]
        async with running(*workers):
            await eventually(lambda: no_jobs_left(db), timeout=20)
        runs = await job_runs(db)
        ids = [job_id for job_id, _ in runs]
        assert len(ids) == n
        assert len(set(ids)) == n
        assert all(len(names) == 1 for names in claimed_by.values())
        assert len({name for _, name in runs}) > 1

    arun(db_url, go)


def test_concurrent_claims_never_hand_out_a_job_twice(db_url: str) -> None:
    n = 120

    async def go(db: Database) -> None:
        async with db.transaction() as uow:
            await enqueue_many(uow, [{"kind": "t.claim", "payload": {}} for _ in range(n)])
        results = await asyncio.gather(
            *(claim(db, f"c{i}", 7, lease=30, kinds=["t.claim"]) for i in range(24))
        )
        ids = [job.id for batch in results for job in batch]
        assert len(ids) == len(set(ids)) == n
        rows = await job_rows(db)
        owner = {job.id: f"c{i}" for i, batch in enumerate(results) for job in batch}
        assert all(r["status"] == "running" and r["locked_by"] == owner[r["id"]] for r in rows)

    arun(db_url, go)
