"""Job handlers of the message lifecycle: submit to the carrier, apply delivery receipts."""

from __future__ import annotations

from signalpost.carriers import get_carrier
from signalpost.context import AppContext
from signalpost.kit.db import Database, UnitOfWork
from signalpost.kit.queue import Job, JobKind, RetryLater, RetryPolicy, complete_within
from signalpost.messages import media, service, whatsapp


def kinds(ctx: AppContext) -> dict[str, JobKind]:
    async def send(db: Database, job: Job) -> None:
        message_id = job.payload["message_id"]
        async with db.transaction() as uow:
            step = await service.begin_sending(ctx, uow, message_id)
            if step.row is None and step.retry_in is None:
                await complete_within(uow, job)  # nothing left to send
        if step.retry_in is not None:
            raise RetryLater(step.retry_in)
        if step.row is None:
            return
        row = await media.fill_for_send(ctx, db, step.row)  # MMS: fetch the media (40317)
        if row is None:
            return
        carrier = whatsapp.channel(ctx) if row["type"] == "WHATSAPP" else get_carrier(ctx)
        result = await carrier.submit(service.submission(row))
        async with db.transaction() as uow:
            retry_in = await service.record_submission(ctx, uow, row, result)
            if retry_in is None:
                await complete_within(uow, job)
        if retry_in is not None:
            raise RetryLater(retry_in)

    async def receipt(uow: UnitOfWork, job: Job) -> None:
        p = job.payload
        await service.apply_receipt(uow, p["message_id"], p["status"], p.get("error_code"))

    return {
        "message.send": JobKind(
            detached=send, retry=RetryPolicy(max_attempts=10, base=0.5, cap=60)
        ),
        "message.receipt": JobKind(
            handler=receipt, retry=RetryPolicy(max_attempts=10, base=0.5, cap=60)
        ),
        **whatsapp.kinds(ctx),
    }
