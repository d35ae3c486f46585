"""The worker: claims due jobs of the kinds it knows and runs their handlers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from signalpost.kit.clock import utcnow
from signalpost.kit.db import Database, UnitOfWork, background_work
from signalpost.kit.queue import notify
from signalpost.kit.queue.retry import (
    JobError,
    LeaseLost,
    PermanentJobError,
    RetryDecision,
    RetryLater,
    RetryPolicy,
)
from signalpost.kit.queue.store import (
    Job,
    claim,
    complete,
    extend_leases,
    failed_params,
    finish_batch,
    mark_failed,
    reschedule,
    reschedule_params,
)

log = logging.getLogger("signalpost.queue")
WORKER_ID_MAX_CHARS = 64  # jobs.locked_by

# --- worker ------------------------------------------------------------------------------------

Handler = Callable[[UnitOfWork, Job], Awaitable[None]]
DetachedHandler = Callable[[Database, Job], Awaitable[None]]
# Outcomes of the jobs of a batch that it did not finish, by job id (see `JobKind`).
Outcomes = Mapping[int, Exception]
BatchHandler = Callable[[Database, list[Job]], Awaitable[Outcomes | None]]


DEFAULT_LANE = "default"


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

    `lane`: kinds of different lanes are claimed and run by different workers (`lanes`), so that
    jobs waiting on something slow outside (a webhook receiver) never hold up the others' claims
    or take their places.
    """

    handler: Handler | None = None
    detached: DetachedHandler | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    batch: BatchHandler | None = None
    batch_size: int = 100
    size: Callable[[Job], int] | None = None
    lane: str = DEFAULT_LANE

    def __post_init__(self) -> None:
        given = [h for h in (self.handler, self.detached, self.batch) if h is not None]
        if len(given) != 1:
            raise ValueError("a JobKind needs exactly one of handler=, detached= and batch=")
        if self.batch_size < 1:
            raise ValueError("batch_size must be positive")


class LaneKinds(Mapping[str, JobKind]):
    """The kinds of one lane, read live from a registry of kinds: a kind registered there later
    (an SMPP carrier's submit kind, once one of its binds is up) is claimed by the lane's workers
    from their next claim on, and one taken out is no longer claimed."""

    def __init__(self, kinds: Mapping[str, JobKind], lane: str) -> None:
        self._kinds = kinds
        self.lane = lane

    def __getitem__(self, name: str) -> JobKind:
        kind = self._kinds[name]
        if kind.lane != self.lane:
            raise KeyError(name)
        return kind

    def __iter__(self) -> Iterator[str]:
        return iter([name for name, kind in list(self._kinds.items()) if kind.lane == self.lane])

    def __len__(self) -> int:
        return sum(1 for kind in list(self._kinds.values()) if kind.lane == self.lane)


def lanes(kinds: Mapping[str, JobKind]) -> dict[str, LaneKinds]:
    """The kinds by lane, each a live view of `kinds` (`LaneKinds`): each lane gets workers of its
    own (`Worker(db, lane_kinds)`). The default lane is always there, for kinds added later."""
    names = {DEFAULT_LANE} | {kind.lane for kind in kinds.values()}
    return {lane: LaneKinds(kinds, lane) for lane in sorted(names)}


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

    A worker's kinds are normally those of one lane (`lanes`); the workers of a lane wake up on
    that lane's `Database.jobs_signal`.

    `listening_poll_interval`: on PostgreSQL, while the process's `LISTEN` connection is up
    (kit.queue.notify), other processes' enqueues wake the worker, so it polls only as a safety net
    (jobs of a dead worker whose lease ran out, due times beyond what notifications carry), this
    often instead of every `poll_interval`: an idle worker then costs the database a claim a
    second, not five. Default: `poll_interval` always.
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
        listening_poll_interval: float | None = None,
    ) -> None:
        if batch < 1 or concurrency < 1 or poll_interval <= 0 or lease <= 0:
            raise ValueError("batch, concurrency, poll_interval and lease must be positive")
        if listening_poll_interval is not None and listening_poll_interval <= 0:
            raise ValueError("listening_poll_interval must be positive")
        if linger < 0:
            raise ValueError("linger must not be negative")
        self.db = db
        self.kinds = kinds
        self.id = (name or _default_worker_id())[:WORKER_ID_MAX_CHARS]
        self.batch = batch
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.listening_poll_interval = listening_poll_interval or poll_interval
        self._listener: notify.Listener | None = None
        self.lease = lease
        self.linger = linger
        self.before_claim = before_claim
        self._busy_until = float("-inf")  # monotonic time until which we count as busy
        self._stopping = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._last_requeue = float("-inf")
        self._tasks: set[asyncio.Task[None]] = set()
        self._running: set[int] = set()  # ids of the jobs this worker holds
        if isinstance(kinds, LaneKinds):
            self.lane = kinds.lane
        else:
            self.lane = "+".join(sorted({k.lane for k in kinds.values()})) or DEFAULT_LANE
        self.jobs_available = db.jobs_signal(self.lane, kinds)

    def stop(self) -> None:
        """Claim nothing more; `run()` returns once the jobs in flight have finished."""
        self._stopping.set()

    async def run(self) -> None:
        """Poll for due jobs and run them concurrently; returns after `stop()` once in-flight jobs end."""
        # This task and the ones it starts do background work: their SQLite transactions take
        # turns with the API's (kit.db.WriteTurns).
        background_work.set(True)
        # Woken by other processes' enqueues (PostgreSQL).
        async with notify.listening(self.db) as self._listener:
            await self._loop()

    async def _loop(self) -> None:
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
                    self.jobs_available.clear()
                    claimed = await self._claim(want)
                    if claimed:
                        self._busy_until = time.monotonic() + BUSY_AFTER_CLAIM
                    for unit in self._units(claimed):
                        self._start(unit)
                    if len(claimed) == want:
                        # More may be due: the other workers of this process claim too.
                        self.jobs_available.set()
                        await asyncio.sleep(0)  # let the started jobs begin
                        continue
                woken = await self._wait(for_jobs=free > 0)
                # Woken by an enqueue that another worker's claim, begun since, has taken in:
                # claiming again would find nothing (each empty claim is a write transaction).
                taken = woken and not self.jobs_available.is_set()
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
        """Until the poll interval passes, `stop()`, and: jobs queued or falling due (`for_jobs`;
        `Database.jobs_queued`, `Database.note_due`), or a free slot.

        True when jobs ended the wait."""
        event = self.jobs_available if for_jobs else self._slot_freed
        listening = self._listener is not None and self._listener.connected.is_set()
        timeout = self.listening_poll_interval if listening else self.poll_interval
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
            failed_params(j, self.id, now, _lease_expired(j, limit(j)), limit(j)) for j in expired
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
            else:
                retry, failure = self._batch_outcome(kind, job, outcome, now, limit(job))
                retries.extend([retry] if retry is not None else [])
                if failure is not None:
                    failures.append(failure)
                    failed_groups = failed_groups or job.group_key is not None
        if finished or retries or failures:
            # (Not the usual case: the handler finished every job in its own last transaction.)
            async with self.db.transaction() as uow:
                await finish_batch(
                    uow,
                    finished,
                    retries,
                    failures,
                    kind=batch[0].kind,
                    worker_id=self.id,
                    failed_groups=failed_groups,
                )

    def _batch_outcome(
        self, kind: JobKind, job: Job, outcome: Exception, now: datetime, limit: int
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """A batch job's failed run: the parameters to run it again, or to mark it failed."""
        if isinstance(outcome, RetryLater):
            params = reschedule_params(
                job, self.id, now, outcome.delay, None, count=False, limit=job.max_attempts
            )
            return params, None
        error = _describe(outcome)
        if isinstance(outcome, PermanentJobError):
            log.warning("job %s %s failed permanently: %s", job.kind, job.id, outcome)
            decision = RetryDecision(retry=False)
            error = f"{type(outcome).__name__}: {outcome}"
        else:
            log.info("job %s %s attempt %s: %s", job.kind, job.id, job.attempts, error)
            decision = kind.retry.decide(job.attempts, max_attempts=limit)
        if decision.retry:
            params = reschedule_params(
                job, self.id, now, decision.delay, error, count=True, limit=limit
            )
            return params, None
        return None, failed_params(job, self.id, now, error, limit)

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
