"""The `webhook.deliver` job: one attempt per event and run, the next one scheduled as a job retry.

A job carries the events one transaction emitted. The kind is a batch kind (it does HTTP outside
any transaction). A run reads the state of all its events in one query, makes the next attempt of
each (the POSTs run concurrently), then records every attempt in one transaction and either ends
each job (its events delivered, or failed after the last attempt on the last URL), asks the queue
to run it again after the backoff (`RetryLater`), or ends it and carries the events still to be
tried in new jobs (`kit.queue.settle`). An event waits while an earlier event of its message is
still pending; the `message.finalized` events of a send batch are queued in the group of its
`message.sent` events, so in the usual case they wait without asking. The plan is always recomputed from the stored attempts, so a run repeated after a crash continues where
the database says the delivery is. One `kit.httpclient.HttpClient` per process lives in
`ctx.extras["webhooks.http"]` and is closed with the application.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping

from signalpost.context import AppContext, outbound_guard
from signalpost.kit.clock import utcnow
from signalpost.kit.db import Database, UnitOfWork
from signalpost.kit.httpclient import HttpClient, HttpError, destination
from signalpost.kit.queue import (
    Job,
    JobError,
    JobKind,
    LeaseLost,
    Outcomes,
    RetryLater,
    RetryPolicy,
    finish_settled,
    held,
    settle,
)
from signalpost.kit.signing import signer_for
from signalpost.webhooks import service
from signalpost.webhooks.service import DeliveryConfig, Step

HTTP_CLIENT_KEY = "webhooks.http"
SLOTS_KEY = "webhooks.slots"
JOB_ATTEMPTS = 10
BATCH_SIZE = 200
PER_HOST = 50  # connections to one receiver at a time
# Deliveries run in a lane of their own (kit.queue.lanes): receivers that answer slowly hold up
# other deliveries at most, never sends or receipts.
LANE = "webhooks"


def http_client(ctx: AppContext) -> HttpClient:
    """The process-wide client for webhook POSTs (created on first use, on the running loop).

    A client made for this one job (kit.httpclient): two POSTs follow every message, and with a
    general-purpose client they cost more CPU than everything else done for the message.
    """
    client = ctx.extras.get(HTTP_CLIENT_KEY)
    if not isinstance(client, HttpClient) or client.closed:
        client = HttpClient(limit_per_host=PER_HOST, guard=outbound_guard(ctx))
        ctx.extras[HTTP_CLIENT_KEY] = client
    return client


class HostGate:
    """The POSTs to one receiving host and port: at most `width` at a time (the client's
    connections to it), and how long its answers take lately.

    A POST takes a slot before its timeout starts: the time a batch's POSTs wait for a connection
    of our own must not count against the receiver's `webhook_timeout`. But a slow receiver must
    not keep deliveries waiting here either, holding their jobs (and the lane's places) for
    minutes: a POST that would wait more than `MAX_HOST_WAIT` s for a slot, at the host's recent
    pace, is put off instead (no attempt counted), to when the host should have room for it:
    the POSTs put off line up behind each other at that pace, so that each comes back about once
    rather than all of them every second.

    Only a slow host's POSTs are put off (at least `SLOW_HOST` s each, lately). A long line
    before a fast one is of our own making, a burst of events, and it clears at our own pace:
    the pace measured during the burst counts this process's own load (a busy event loop) and
    drops once it has passed, so POSTs put off at it would come back long after the host had
    room for them (seconds after the rest, for a tenth of a 3,000-message burst).
    """

    def __init__(self, width: int) -> None:
        self.width = width
        self.slots = asyncio.Semaphore(width)
        self.queued = 0  # POSTs admitted and not finished (holding a slot or waiting for one)
        self.latency = 0.0  # seconds per POST, a moving average
        self.booked_until = 0.0  # monotonic time up to which POSTs put off are lined up

    def wait_estimate(self) -> float:
        """Seconds one more POST would wait for a slot, at the recent pace (0: one is free)."""
        if self.queued < self.width:
            return 0.0
        return (self.queued - self.width + 1) / self.width * self.latency

    def admit(self, now: float) -> float | None:
        """None: go ahead (the POST is counted in until `done`); else put it off so many s."""
        wait = self.wait_estimate()
        if wait <= MAX_HOST_WAIT or self.latency < SLOW_HOST:
            self.queued += 1
            return None
        at = max(now + wait, self.booked_until)
        self.booked_until = at + self.latency / self.width
        # Whole seconds, so that the POSTs put off together share their new jobs.
        return float(min(MAX_PUT_OFF, max(MIN_PUT_OFF, math.ceil(at - now))))

    def done(self, seconds: float | None) -> None:
        """An admitted POST ended after holding a slot `seconds` (None: it never got one)."""
        self.queued -= 1
        if seconds is not None:
            self.latency += (seconds - self.latency) * LATENCY_WEIGHT


# How long a POST may wait for a slot of its receiving host before it is put off instead.
MAX_HOST_WAIT = 1.0
# A host whose POSTs take at least this long (seconds, its recent pace) is slow: only its POSTs
# are put off.
SLOW_HOST = 1.0
LATENCY_WEIGHT = 0.2
# A POST put off waits at least this long, at most `MAX_PUT_OFF` (seconds).
MIN_PUT_OFF = 1.0
MAX_PUT_OFF = 300.0


def host_slots(ctx: AppContext) -> dict[str, HostGate]:
    """The process's `HostGate`s, by receiving host and port."""
    slots: dict[str, HostGate] = ctx.extras.setdefault(SLOTS_KEY, {})
    return slots


@dataclass(frozen=True)
class PutOff:
    """A POST not made: its receiving host is saturated; try again in `delay` s."""

    delay: float


def _admit(slots: dict[str, HostGate] | None, post: _Post, now: float) -> HostGate | PutOff | None:
    """The gate a POST goes through (admitted), or that it is put off; None: no gate."""
    if slots is None:
        return None
    try:
        to = destination(post.step.url)
    except HttpError:  # service.post records the failed attempt
        return None
    gate = slots.get(f"{to.host}:{to.port}")
    if gate is None:
        gate = slots[f"{to.host}:{to.port}"] = HostGate(PER_HOST)
    delay = gate.admit(now)
    return gate if delay is None else PutOff(delay)


async def _post(
    gate: HostGate | PutOff | None, http: HttpClient, post: _Post, timeout: float
) -> service.AttemptResult | PutOff:
    if isinstance(gate, PutOff):
        return gate
    if gate is None:
        return await service.post(http, post.step.url, post.body, post.headers, timeout)
    started = None
    try:
        async with gate.slots:
            started = time.monotonic()
            return await service.post(http, post.step.url, post.body, post.headers, timeout)
    finally:
        gate.done(time.monotonic() - started if started is not None else None)


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


def event_ids(job: Job) -> list[str]:
    """The events a delivery job carries."""
    listed = job.payload.get("event_ids")
    return [str(i) for i in listed] if listed is not None else [str(job.payload["event_id"])]


# How soon an event waiting for an earlier event of its message looks again, at the least.
BLOCKED_RECHECK = 0.05
# A blocker that has waited long without a due attempt of its own (its POSTs put off, a slow
# host) is looked at again after a tenth of its wait, at most `BLOCKED_RECHECK_MAX` s.
BLOCKED_BACKOFF = 0.1
BLOCKED_RECHECK_MAX = 10.0


def blocked_delay(blocker: Mapping[Any, Any], config: DeliveryConfig, at: float) -> float:
    """When to look again at an event waiting for an earlier one of its message (`blocker`):
    when the blocker's next attempt is due; or, when nothing is known of that (never tried, or due
    now), soon — but the longer the blocker has waited, the less often. A blocker put off for
    minutes, behind a slow receiver, would otherwise have each of its message's later events
    claimed and put back every 50 ms: a write transaction each time, which on SQLite takes turns
    with the API's and slowed every tenant's sends."""
    due = _due(blocker, config) - at
    if due > BLOCKED_RECHECK:
        return due
    waited = at - float(blocker["occurred_at"].timestamp())
    return max(BLOCKED_RECHECK, min(BLOCKED_RECHECK_MAX, waited * BLOCKED_BACKOFF))


async def deliver_batch(
    db: Database,
    http: HttpClient,
    config: DeliveryConfig,
    batch: Sequence[Job],
    *,
    now: datetime | None = None,
    own_jobs: bool = True,
    slots: dict[str, HostGate] | None = None,
) -> dict[int, Exception]:
    """Make the next attempt of each event of the jobs; returns `RetryLater` for the jobs to run
    again.

    An event waits while an earlier event of its message is still pending, so that a message's
    events reach a URL in order. With `own_jobs`, the jobs are held from the queue: only those
    still held are recorded, and the finished ones are completed in the same transaction as their
    attempts. A job of several events of which some must be tried again later is completed too,
    and those events go on in new jobs (one per due time).
    """
    jobs_ = list({job.id: job for job in batch}.values())
    items = [(job, event_id) for job in jobs_ for event_id in event_ids(job)]
    async with db.transaction() as uow:
        states, first = await _read_states(uow, sorted({e for _, e in items}))
    plan = _plan(items, states, first, config, (now or utcnow()).timestamp())
    unsigned = plan.unsigned
    signed = await _sign(
        [(config.seed(seed), body) for _, _, _, body, seed in unsigned], config.user_agent
    )
    posts = [
        _Post(job, event_id, step, body, headers)
        for (job, event_id, step, body, _), headers in zip(unsigned, signed, strict=True)
    ]

    now_ = time.monotonic()
    gates = [_admit(slots, p, now_) for p in posts]  # counted in here, released in `_post`
    outcomes = await asyncio.gather(
        *(_post(g, http, p, config.timeout) for g, p in zip(gates, posts, strict=True))
    )
    posts, results = _made(posts, outcomes, plan)

    async with db.transaction() as uow:
        mine = {j.id for j in await held(uow, jobs_)} if own_jobs else {j.id for j in jobs_}
        await _record(uow, config, plan, posts, results, mine)
        settled = settle([j for j in jobs_ if j.id in mine], event_ids, plan.later)
        if not own_jobs:
            return settled.outcomes
        return await finish_settled(uow, settled, service.JOB_KIND, "event_ids")


def _made(
    posts: Sequence[_Post],
    outcomes: Sequence[service.AttemptResult | PutOff],
    plan: _Plan,
) -> tuple[list[_Post], list[service.AttemptResult]]:
    """The POSTs made and their results; the ones put off go to `plan.later`."""
    made: list[_Post] = []
    results: list[service.AttemptResult] = []
    for p, outcome in zip(posts, outcomes, strict=True):
        if isinstance(outcome, PutOff):
            plan.later[p.job.id, p.event_id] = outcome.delay
        else:
            made.append(p)
            results.append(outcome)
    return made, results


async def _read_states(
    uow: UnitOfWork, event_ids_: Sequence[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, RowMapping]]:
    """The events' delivery states, and the earliest pending event of each of their messages."""
    states = await service.delivery_states(uow, event_ids_)
    first = _first_pending(
        await service.pending_events_of_messages(
            uow,
            [
                st["message_id"]
                for st in states.values()
                if st["status"] == "pending"
                and st["message_id"] is not None
                and st["event_type"] not in service.OPENING_EVENTS
            ],
        )
    )
    return states, first


@dataclass
class _Plan:
    """What a delivery batch does with each of its events."""

    later: dict[tuple[int, str], float] = field(default_factory=dict)  # (job id, event id): in s
    exhausted: list[tuple[Job, str]] = field(default_factory=list)  # no URL left to try
    unsigned: list[tuple[Job, str, Step, bytes, str]] = field(default_factory=list)  # to POST now


def _plan(
    items: Sequence[tuple[Job, str]],
    states: Mapping[str, Mapping[str, Any]],
    first: Mapping[str, RowMapping],
    config: DeliveryConfig,
    at: float,
) -> _Plan:
    """Sort the batch's events: POST now, try later (blocked, or not due), or give up."""
    plan = _Plan()
    seen: set[str] = set()
    for job, event_id in items:
        state = states.get(event_id)
        if state is None or state["status"] != "pending":
            continue  # nothing left to do
        if event_id in seen:  # the same event twice in one batch: plan it again afterwards
            plan.later[job.id, event_id] = 0.0
            continue
        seen.add(event_id)
        blocker = first.get(state["message_id"]) if state["message_id"] is not None else None
        if blocker is not None and blocker["id"] != event_id:
            plan.later[job.id, event_id] = blocked_delay(blocker, config, at)
            continue
        done = int(state["attempts"])
        step = service.next_step(done, list(state["urls"]), config.attempts_per_url)
        if step is None:
            plan.exhausted.append((job, event_id))
            continue
        due = _due(state, config)
        if due - at > 0.001:
            plan.later[job.id, event_id] = due - at
            continue
        body = service.body_bytes(state["payload_json"], step.attempt, step.url)
        plan.unsigned.append((job, event_id, step, body, state["signing_seed"]))
    return plan


async def _record(
    uow: UnitOfWork,
    config: DeliveryConfig,
    plan: _Plan,
    posts: Sequence[_Post],
    results: Sequence[service.AttemptResult],
    mine: set[int],
) -> None:
    """Store the attempts of the jobs still held (`mine`), give up the exhausted events, and plan
    the next attempt of each failed POST (in `plan.later`)."""
    records = [
        service.attempt_record(p.event_id, p.step, r, p.headers)
        for p, r in zip(posts, results, strict=True)
        if p.job.id in mine
    ]
    recorded = await service.record_attempts(uow, records)
    for job, event_id in plan.exhausted:
        if job.id in mine:
            await service.give_up(uow, event_id)
    for p, r in zip(posts, results, strict=True):
        if p.job.id not in mine or r.ok or p.step.final:
            continue
        if p.event_id not in recorded:
            # Another run (a worker whose lease ran out mid-POST) recorded this attempt first:
            # plan again from what is stored.
            plan.later[p.job.id, p.event_id] = 0.0
        else:
            plan.later[p.job.id, p.event_id] = service.delay_after(
                p.step.attempt, config.attempts_per_url, config.retry_base
            )


def _first_pending(rows: Sequence[RowMapping]) -> dict[str, RowMapping]:
    """The earliest pending event of each message, by message id."""
    first: dict[str, RowMapping] = {}
    for row in rows:
        known = first.get(row["message_id"])
        if known is None or (row["occurred_at"], row["id"]) < (known["occurred_at"], known["id"]):
            first[row["message_id"]] = row
    return first


def _due(state: Mapping[Any, Any], config: DeliveryConfig) -> float:
    """When an event's next attempt is due (Unix seconds; 0 when it was never tried)."""
    done = int(state["attempts"])
    last: datetime | None = state["last_attempt_finished_at"]
    if not done or last is None:
        return 0.0
    return last.timestamp() + service.delay_after(done, config.attempts_per_url, config.retry_base)


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
                    for event_id in event_ids(last):
                        await service.give_up(uow, event_id)
            raise

    # The policy covers unexpected errors (e.g. the database went away); delivery attempts and
    # their backoff are counted on the event, not on the job.
    return {
        service.JOB_KIND: JobKind(
            batch=run,
            batch_size=BATCH_SIZE,
            size=lambda job: len(event_ids(job)),
            retry=RetryPolicy(max_attempts=JOB_ATTEMPTS, base=1.0, cap=60.0),
            lane=LANE,
        )
    }
