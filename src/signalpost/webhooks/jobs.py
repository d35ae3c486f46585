"""The `webhook.deliver` job: one attempt per run, the next one scheduled as a job retry.

The job is detached (it does HTTP outside any transaction). Each run reads the event's recorded
attempts, makes the next attempt, records it, and either ends (delivered, or failed after the last
attempt on the last URL) or asks the queue to run it again after the backoff (`RetryLater`). The
plan is always recomputed from the stored attempts, so a run repeated after a crash continues where
the database says the delivery is. One `aiohttp.ClientSession` per process lives in
`ctx.extras["webhooks.http"]` and is closed with the application.
"""

from __future__ import annotations

from datetime import datetime

import aiohttp

from signalpost.context import AppContext
from signalpost.kit.clock import utcnow
from signalpost.kit.db import Database
from signalpost.kit.queue import (
    Job,
    JobKind,
    LeaseLost,
    RetryLater,
    RetryPolicy,
    complete_within,
)
from signalpost.kit.signing import Signer
from signalpost.webhooks import service
from signalpost.webhooks.service import DeliveryConfig

HTTP_CLIENT_KEY = "webhooks.http"


def http_client(ctx: AppContext) -> aiohttp.ClientSession:
    """The process-wide session for webhook POSTs (created on first use, on the running loop).

    aiohttp rather than httpx here: a webhook POST costs about a tenth of the CPU, and two of them
    follow every message.
    """
    client = ctx.extras.get(HTTP_CLIENT_KEY)
    if not isinstance(client, aiohttp.ClientSession) or client.closed:
        client = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=ctx.settings.webhook_timeout),
            connector=aiohttp.TCPConnector(limit=200, limit_per_host=50),
            skip_auto_headers=("User-Agent", "Content-Type"),
        )
        ctx.extras[HTTP_CLIENT_KEY] = client
    return client


async def deliver(
    db: Database,
    http: aiohttp.ClientSession,
    config: DeliveryConfig,
    event_id: str,
    *,
    now: datetime | None = None,
    job: Job | None = None,
) -> None:
    """Make the next attempt of one event; raises `RetryLater` when another attempt should follow."""
    async with db.transaction() as uow:
        state = await service.delivery_state(uow, event_id)
    if state is None or state["status"] != "pending":
        return
    done = int(state["attempts"])
    step = service.next_step(done, list(state["urls"]), config.attempts_per_url)
    if step is None:
        async with db.transaction() as uow:
            await service.give_up(uow, event_id)
        return
    last: datetime | None = state["last_attempt_finished_at"]
    if done and last is not None:
        due = last.timestamp() + service.delay_after(
            done, config.attempts_per_url, config.retry_base
        )
        wait = due - (now or utcnow()).timestamp()
        if wait > 0.001:
            raise RetryLater(wait)

    body = service.body_bytes(state["payload"], step.attempt, step.url)
    headers = service.request_headers(Signer(state["signing_seed"]), body, config.user_agent)
    result = await service.post(http, step.url, body, headers, config.timeout)

    async with db.transaction() as uow:
        recorded = await service.record_attempt(uow, event_id, step, result, headers)
        if recorded and job is not None and (result.ok or step.final):
            await complete_within(uow, job)
    if not recorded:
        # Another run (a worker whose lease ran out mid-POST) recorded this attempt first:
        # plan again from what is stored.
        raise RetryLater(0.0)
    if result.ok or step.final:
        return
    raise RetryLater(service.delay_after(step.attempt, config.attempts_per_url, config.retry_base))


JOB_ATTEMPTS = 10


def kinds(ctx: AppContext) -> dict[str, JobKind]:
    config = DeliveryConfig.from_settings(ctx.settings)

    async def run(db: Database, job: Job) -> None:
        event_id = str(job.payload["event_id"])
        try:
            await deliver(db, http_client(ctx), config, event_id, job=job)
        except (RetryLater, LeaseLost):
            raise
        except Exception:
            # The job's last run failed on something unexpected: the event must not stay
            # `pending` forever (the job itself ends `failed`, visibly, too).
            if job.attempts >= (job.max_attempts or JOB_ATTEMPTS):
                async with db.transaction() as uow:
                    await service.give_up(uow, event_id)
            raise

    # The policy covers unexpected errors (e.g. the database went away); delivery attempts and
    # their backoff are counted on the event, not on the job.
    return {
        service.JOB_KIND: JobKind(
            detached=run, retry=RetryPolicy(max_attempts=JOB_ATTEMPTS, base=1.0, cap=60.0)
        )
    }
