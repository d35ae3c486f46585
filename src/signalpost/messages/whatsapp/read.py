"""Simulated read receipts: a delivered WhatsApp message is read soon after (`message.read`)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import RowMapping

from signalpost.carriers.base import SubmitResult
from signalpost.context import AppContext
from signalpost.kit.clock import parse_datetime, utcnow
from signalpost.kit.db import UnitOfWork
from signalpost.kit.queue import Job, JobKind, RetryLater, RetryPolicy, enqueue
from signalpost.messages import repository as repo
from signalpost.messages.lifecycle import emit_event

READ_JOB = "message.read"
READ_DELAY = 0.05  # seconds between the delivery receipt and the read receipt (simulated)
READ_RECHECK = 0.1

# --- read receipts -------------------------------------------------------------------------------


async def after_sent(uow: UnitOfWork, sent: RowMapping, result: SubmitResult) -> None:
    """A WhatsApp message the network will deliver is read by its recipient soon after."""
    receipt = result.receipt
    if sent["type"] != "WHATSAPP" or receipt is None or receipt.status != "delivered":
        return
    deadline = utcnow() + timedelta(seconds=receipt.after + 120)
    await enqueue(
        uow,
        READ_JOB,
        {"message_id": sent["id"], "deadline": deadline.isoformat()},
        delay=receipt.after + READ_DELAY,
    )


async def mark_read(uow: UnitOfWork, message_id: str) -> bool | None:
    """The recipient read a delivered message: `read` and `message.read`. None: not delivered yet."""
    row = await repo.get_for_update(uow, message_id)
    if row is None:
        return False
    if row["to_status"] in ("queued", "sending", "sent"):
        return None
    if row["to_status"] != "delivered":
        return False
    new = await repo.update_message(
        uow, message_id, {"to_status": "read", "updated_at": utcnow()}, only_status="delivered"
    )
    if new is None:
        return False
    await emit_event(uow, new, "message.read")
    return True


def kinds(ctx: AppContext) -> dict[str, JobKind]:
    """The read-receipt job (`after_sent` schedules it)."""

    async def read(uow: UnitOfWork, job: Job) -> None:
        done = await mark_read(uow, job.payload["message_id"])
        deadline = job.payload.get("deadline")
        if done is None and (deadline is None or utcnow() < parse_datetime(deadline)):
            raise RetryLater(READ_RECHECK)

    return {READ_JOB: JobKind(handler=read, retry=RetryPolicy(max_attempts=5, base=0.5, cap=30))}
