"""Jobs of the simulated network: a simulated handset answering a message delivered to it."""

from __future__ import annotations

from signalpost.context import AppContext
from signalpost.kit.clock import parse_datetime, utcnow
from signalpost.kit.db import UnitOfWork
from signalpost.kit.queue import Job, JobKind, RetryLater, RetryPolicy
from signalpost.messages import inbound

# How often a handset looks again whether the message it answers has been delivered.
RECHECK_SECONDS = 0.1


def kinds(ctx: AppContext) -> dict[str, JobKind]:
    async def handset_reply(uow: UnitOfWork, job: Job) -> None:
        done = await inbound.handset_reply(ctx, uow, job.payload["message_id"])
        deadline = job.payload.get("deadline")
        if done is None and (deadline is None or utcnow() < parse_datetime(deadline)):
            raise RetryLater(RECHECK_SECONDS)

    return {
        inbound.HANDSET_REPLY_JOB: JobKind(
            handler=handset_reply, retry=RetryPolicy(max_attempts=5, base=0.5, cap=30)
        ),
    }
