"""The `webhook.deliver` job: one attempt per run, the next one scheduled as a job retry.

The kind is a batch kind (it does HTTP outside any transaction). A run reads the state of all its
events in one query, makes the next attempt of each (the POSTs run concurrently), then records
every attempt in one transaction and either ends each job (delivered, or failed after the last
attempt on the last URL) or asks the queue to run it again after the backoff (`RetryLater`). The
plan is always recomputed from the stored attempts, so a run repeated after a crash continues where
the database says the delivery is. One `kit.httpclient.HttpClient` per process lives in
`ctx.extras["webhooks.http"]` and is closed with the application.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from signalpost.context import AppContext
from signalpost.kit.clock import utcnow
from signalpost.kit.db import Database
from signalpost.kit.httpclient import HttpClient
from signalpost.kit.queue import (
    Job,
    JobError,
    JobKind,
    LeaseLost,
    Outcomes,
    RetryLater,
    RetryPolicy,
    complete_many_within,
    held,
)
from signalpost.kit.signing import signer_for
from signalpost.webhooks import service
from signalpost.webhooks.service import DeliveryConfig, Step

HTTP_CLIENT_KEY = "webhooks.http"
SLOTS_KEY = "webhooks.slots"
JOB_ATTEMPTS = 10
BATCH_SIZE = 200
PER_HOST = 50  # connections to one receiver at a time


def http_client(ctx: AppContext) -> HttpClient:
    """The process-wide client for webhook POSTs (created on first use, on the running loop).

    A client made for this one job (kit.httpclient): two POSTs follow every message, and with a
    general-purpose client they cost more CPU than everything else done for the message.
    """
    client = ctx.extras.get(HTTP_CLIENT_KEY)
    if not isinstance(client, HttpClient) or client.closed:
        client = HttpClient(limit_per_host=PER_HOST)
        ctx.extras[HTTP_CLIENT_KEY] = client
    return client


def host_slots(ctx: AppContext) -> dict[str, asyncio.Semaphore]:
    """One semaphore per receiving host and port, as wide as the client's connections to it.

    A POST takes a slot before its timeout starts: the time a batch's POSTs wait for a connection
    of our own must not count against the receiver's `webhook_timeout`.
    """
    slots: dict[str, asyncio.Semaphore] = ctx.extras.setdefault(SLOTS_KEY, {})
    return slots


async def _post(
    slots: dict[str, asyncio.Semaphore] | None,
    http: HttpClient,
    post: _Post,
    timeout: float,
) -> service.AttemptResult:
    if slots is None:
        return await service.post(http, post.step.url, post.body, post.headers, timeout)
    url = urlsplit(post.step.url)
    slot = slots.setdefault(f"{url.hostname}:{url.port}", asyncio.Semaphore(PER_HOST))
    async with slot:
        return await service.post(http, post.step.url, post.body, post.headers, timeout)


# From this many signatures on, a batch signs on a worker thread: the signing library releases the
# interpreter lock, so the signatures (the largest single cost of a POST) use another core.
SIGN_ON_THREAD = 16


async def _sign(items: list[tuple[str, bytes]], user_agent: str) -> list[dict[str, str]]:
    """The request headers, signature included, of each (seed, body)."""

    def sign_all() -> list[dict[str, str]]:
        return [service.request_headers(signer_for(seed), body, user_agent) for seed, body in items]

    return await asyncio.to_thread(sign_all) if len(items) >= SIGN_ON_THREAD else sign_all()


@dataclass
class _Post:
    job: Job
    event_id: str
    step: Step
    body: bytes
    headers: dict[str, str]


async def deliver_batch(
    db: Database,
    http: HttpClient,
    config: DeliveryConfig,
    batch: Sequence[Job],
    *,
    now: datetime | None = None,
    own_jobs: bool = True,
    slots: dict[str, asyncio.Semaphore] | None = None,
) -> dict[int, Exception]:
    """Make the next attempt of each job's event; returns `RetryLater` for the jobs to run again.

    With `own_jobs`, the jobs are held from the queue: only those still held are recorded, and the
    finished ones are completed in the same transaction as their attempts.
    """
    outcomes: dict[int, Exception] = {}
    event_ids = [str(job.payload["event_id"]) for job in batch]
    async with db.transaction() as uow:
        states = await service.delivery_states(uow, sorted(set(event_ids)))
    finished: list[Job] = []  # nothing left to do
    exhausted: list[tuple[Job, str]] = []  # no URL left to try
    unsigned: list[tuple[Job, str, Step, bytes, str]] = []
    seen: set[str] = set()
    at = (now or utcnow()).timestamp()
    for job, event_id in zip(batch, event_ids, strict=True):
        state = states.get(event_id)
        if state is None or state["status"] != "pending":
            finished.append(job)
            continue
        if event_id in seen:  # the same event twice in one batch: plan it again afterwards
            outcomes[job.id] = RetryLater(0.0)
            continue
        seen.add(event_id)
        done = int(state["attempts"])
        step = service.next_step(done, list(state["urls"]), config.attempts_per_url)
        if step is None:
            exhausted.append((job, event_id))
            continue
        last: datetime | None = state["last_attempt_finished_at"]
        if done and last is not None:
            due = last.timestamp() + service.delay_after(
                done, config.attempts_per_url, config.retry_base
            )
            if due - at > 0.001:
                outcomes[job.id] = RetryLater(due - at)
                continue
        body = service.body_bytes(state["payload_json"], step.attempt, step.url)
        unsigned.append((job, event_id, step, body, state["signing_seed"]))
    signed = await _sign([(seed, body) for _, _, _, body, seed in unsigned], config.user_agent)
    posts = [
        _Post(job, event_id, step, body, headers)
        for (job, event_id, step, body, _), headers in zip(unsigned, signed, strict=True)
    ]

    results = await asyncio.gather(*(_post(slots, http, p, config.timeout) for p in posts))

    async with db.transaction() as uow:
        mine = {j.id for j in await held(uow, batch)} if own_jobs else {j.id for j in batch}
        attempt_ids = iter(service.new_uuids(len(posts)))
        records = [
            service.attempt_record(p.event_id, p.step, r, p.headers, next(attempt_ids))
            for p, r in zip(posts, results, strict=True)
            if p.job.id in mine
        ]
        recorded = await service.record_attempts(uow, records)
        for job, event_id in exhausted:
            if job.id in mine:
                await service.give_up(uow, event_id)
        complete = [j for j in finished if j.id in mine] + [j for j, _ in exhausted if j.id in mine]
        for p, r in zip(posts, results, strict=True):
            if p.job.id not in mine:
                continue
            if p.event_id not in recorded:
                # Another run (a worker whose lease ran out mid-POST) recorded this attempt first:
                # plan again from what is stored.
                outcomes[p.job.id] = RetryLater(0.0)
            elif r.ok or p.step.final:
                complete.append(p.job)
            else:
                outcomes[p.job.id] = RetryLater(
                    service.delay_after(p.step.attempt, config.attempts_per_url, config.retry_base)
                )
        if own_jobs:
            await complete_many_within(uow, complete)
    return outcomes


async def deliver(
    db: Database,
    http: HttpClient,
    config: DeliveryConfig,
    event_id: str,
    *,
    now: datetime | None = None,
) -> None:
    """Make the next attempt of one event, outside the queue; `RetryLater` when another should follow."""
    job = Job(
        id=0,
        kind=service.JOB_KIND,
        payload={"event_id": event_id},
        attempts=1,
        max_attempts=0,
        group_key=None,
    )
    outcome = (await deliver_batch(db, http, config, [job], now=now, own_jobs=False)).get(0)
    if outcome is not None:
        raise outcome


def kinds(ctx: AppContext) -> dict[str, JobKind]:
    config = DeliveryConfig.from_settings(ctx.settings)

    async def run(db: Database, batch: list[Job]) -> Outcomes:
        try:
            return await deliver_batch(db, http_client(ctx), config, batch, slots=host_slots(ctx))
        except (RetryLater, LeaseLost, JobError):
            raise
        except Exception:
            # The job's last run failed on something unexpected: the event must not stay
            # `pending` forever (the job itself ends `failed`, visibly, too). Only for a batch
            # of one: the worker runs the jobs of a broken batch again one by one, and the others
            # must not be given up for the bad one.
            last = batch[0] if len(batch) == 1 else None
            if last is not None and last.attempts >= (last.max_attempts or JOB_ATTEMPTS):
                async with db.transaction() as uow:
                    await service.give_up(uow, str(last.payload["event_id"]))
            raise

    # The policy covers unexpected errors (e.g. the database went away); delivery attempts and
    # their backoff are counted on the event, not on the job.
    return {
        service.JOB_KIND: JobKind(
            batch=run,
            batch_size=BATCH_SIZE,
            retry=RetryPolicy(max_attempts=JOB_ATTEMPTS, base=1.0, cap=60.0),
        )
    }
