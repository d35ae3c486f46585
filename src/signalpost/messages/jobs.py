"""Job handlers of the message lifecycle: submit to the carrier, apply delivery receipts.

Both are batch kinds. A send batch takes its messages to `sending` in one transaction, submits
them to the carrier together (MMS fetch their media first, one by one), and records every answer,
the `message.sent` events and the receipt jobs in one more transaction, which also completes the
jobs. A receipt batch finalizes its messages in one transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from signalpost.carriers import get_carrier
from signalpost.carriers.base import Carrier, SubmitResult
from signalpost.context import AppContext
from signalpost.kit.db import Database
from signalpost.kit.queue import (
    Job,
    JobKind,
    Outcomes,
    RetryLater,
    RetryPolicy,
    complete_many_within,
    held,
)
from signalpost.messages import media, service, whatsapp
from signalpost.messages.service import Message

BATCH_SIZE = 200


def _message_id(job: Job) -> str:
    return str(job.payload["message_id"])


async def send_batch(ctx: AppContext, db: Database, batch: Sequence[Job]) -> dict[int, Exception]:
    """Run `message.send` jobs; returns the outcomes of those not finished (see `JobKind`)."""
    outcomes: dict[int, Exception] = {}
    first: dict[str, Job] = {}
    duplicates: list[Job] = []  # a message named twice is sent by its first job
    for job in batch:
        if _message_id(job) in first:
            duplicates.append(job)
        else:
            first[_message_id(job)] = job
    async with db.transaction() as uow:
        mine = {j.id for j in await held(uow, batch)}
        unique = [j for j in first.values() if j.id in mine]
        steps = await service.begin_sending_many(ctx, uow, [_message_id(j) for j in unique])
        done = [j for j in duplicates if j.id in mine]
        sending: list[tuple[Job, Message]] = []
        for job in unique:
            step = steps[_message_id(job)]
            if step.retry_in is not None:
                outcomes[job.id] = RetryLater(step.retry_in)
            elif step.row is None:
                done.append(job)  # nothing left to send
            else:
                sending.append((job, step.row))
        await complete_many_within(uow, done)
    if not sending:
        return outcomes

    # MMS: fetch the media (40317 ends the message); a failure to fetch is that job's alone.
    filled = await asyncio.gather(
        *(_fill(ctx, db, row) for _, row in sending), return_exceptions=True
    )
    ready: list[tuple[Job, Message]] = []
    finished: list[Job] = []
    for (job, _), got in zip(sending, filled, strict=True):
        if isinstance(got, Exception):
            outcomes[job.id] = got
        elif isinstance(got, BaseException):
            raise got
        elif got is None:
            finished.append(job)
        else:
            ready.append((job, got))

    answers = await _submit(ctx, ready, outcomes)

    async with db.transaction() as uow:
        recorded = {j.id for j in await held(uow, [j for j, _, _ in answers] + finished)}
        retry = await service.record_submissions(
            ctx, uow, [(row, result) for job, row, result in answers if job.id in recorded]
        )
        complete = [j for j in finished if j.id in recorded]
        for job, row, _ in answers:
            if job.id not in recorded:
                continue
            if row["id"] in retry:
                outcomes[job.id] = RetryLater(retry[row["id"]])
            else:
                complete.append(job)
        await complete_many_within(uow, complete)
    return outcomes


async def _fill(ctx: AppContext, db: Database, row: Message) -> Message | None:
    if not media.needs_fetch(row):
        return row
    return await media.fill_for_send(ctx, db, service.as_row(row))


async def _submit(
    ctx: AppContext, ready: list[tuple[Job, Message]], outcomes: dict[int, Exception]
) -> list[tuple[Job, Message, SubmitResult]]:
    """Submit to each message's carrier (WhatsApp has its own channel), one call per carrier.

    A carrier that raises fails the jobs of its messages (they stay `sending` and are submitted
    again when the job is retried)."""
    groups: dict[int, tuple[Carrier, list[tuple[Job, Message]]]] = {}
    for job, row in ready:
        carrier = whatsapp.channel(ctx) if row["type"] == "WHATSAPP" else get_carrier(ctx)
        groups.setdefault(id(carrier), (carrier, []))[1].append((job, row))
    answers: list[tuple[Job, Message, SubmitResult]] = []
    for carrier, items in groups.values():
        try:
            results = await carrier.submit_many([service.submission(row) for _, row in items])
        except Exception as exc:
            for job, _ in items:
                outcomes[job.id] = exc
            continue
        answers.extend(
            (job, row, result) for (job, row), result in zip(items, results, strict=True)
        )
    return answers


async def receipt_batch(db: Database, batch: Sequence[Job]) -> None:
    """Apply delivery receipts: one transaction finalizes every `sent` message of the batch."""
    async with db.transaction() as uow:
        mine = await held(uow, batch)
        await service.apply_receipts(
            uow,
            [(_message_id(j), j.payload["status"], j.payload.get("error_code")) for j in mine],
        )
        await complete_many_within(uow, mine)


def kinds(ctx: AppContext) -> dict[str, JobKind]:
    async def send(db: Database, batch: list[Job]) -> Outcomes:
        return await send_batch(ctx, db, batch)

    async def receipt(db: Database, batch: list[Job]) -> None:
        await receipt_batch(db, batch)

    return {
        "message.send": JobKind(
            batch=send,
            batch_size=BATCH_SIZE,
            retry=RetryPolicy(max_attempts=10, base=0.5, cap=60),
        ),
        "message.receipt": JobKind(
            batch=receipt,
            batch_size=BATCH_SIZE,
            retry=RetryPolicy(max_attempts=10, base=0.5, cap=60),
        ),
        **whatsapp.kinds(ctx),
    }
