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
from signalpost.carriers.base import Carrier, LocalCarrier, SubmitResult
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
RECEIPT_JOBS_PER_BATCH = 4


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
    carrier = get_carrier(ctx)
    local = carrier if isinstance(carrier, LocalCarrier) else None

    def answers_at_once(row: Message) -> bool:
        # The carrier answers within the transaction: nothing to fetch, no other channel.
        return local is not None and row["type"] != "WHATSAPP" and not media.needs_fetch(row)

    async with db.transaction() as uow:
        mine = {j.id for j in await held(uow, batch)}
        unique = [j for j in first.values() if j.id in mine]
        steps = await service.begin_sending_many(
            ctx, uow, [_message_id(j) for j in unique], unwritten=answers_at_once
        )
        done = [j for j in duplicates if j.id in mine]
        sending: list[tuple[Job, Message]] = []
        at_once: list[tuple[Job, Message]] = []
        for job in unique:
            step = steps[_message_id(job)]
            if step.retry_in is not None:
                outcomes[job.id] = RetryLater(step.retry_in)
            elif step.row is None:
                done.append(job)  # nothing left to send
            elif step.stored is not None:
                at_once.append((job, step.row))
            else:
                sending.append((job, step.row))
        if at_once:
            assert local is not None
            results = await local.submit_within(uow, [service.submission(r) for _, r in at_once])
            answers = [
                (job, row, result) for (job, row), result in zip(at_once, results, strict=True)
            ]
            stored = {
                _message_id(j): s.stored for j in unique if (s := steps[_message_id(j)]).stored
            }
            retry = await service.record_submissions(
                ctx, uow, [(row, result) for _, row, result in answers], stored=stored
            )
            done += _recorded(answers, retry, outcomes)
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
        answers = [a for a in answers if a[0].id in recorded]
        retry = await service.record_submissions(
            ctx, uow, [(row, result) for _, row, result in answers]
        )
        complete = [j for j in finished if j.id in recorded] + _recorded(answers, retry, outcomes)
        await complete_many_within(uow, complete)
    return outcomes


def _recorded(
    answers: list[tuple[Job, Message, SubmitResult]],
    retry: dict[str, float],
    outcomes: dict[int, Exception],
) -> list[Job]:
    """The jobs whose carrier answer was recorded and that are done; those the carrier throttled
    get their `RetryLater` in `outcomes`."""
    complete: list[Job] = []
    for job, row, _ in answers:
        if row["id"] in retry:
            outcomes[job.id] = RetryLater(retry[row["id"]])
        else:
            complete.append(job)
    return complete


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


def receipts(job: Job) -> list[tuple[str, str, str | None]]:
    """The receipts a `message.receipt` job carries: `(message_id, status, error_code)`."""
    items = job.payload.get("receipts", [job.payload])  # or one, as jobs once did
    return [(str(r["message_id"]), r["status"], r.get("error_code")) for r in items]


async def receipt_batch(db: Database, batch: Sequence[Job]) -> None:
    """Apply delivery receipts: one transaction finalizes every `sent` message of the batch."""
    async with db.transaction() as uow:
        mine = await held(uow, batch)
        await service.apply_receipts(uow, [r for job in mine for r in receipts(job)])
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
        service.RECEIPT_JOB: JobKind(
            batch=receipt,
            # Each job carries the receipts of one send batch.
            batch_size=RECEIPT_JOBS_PER_BATCH,
            retry=RetryPolicy(max_attempts=10, base=0.5, cap=60),
        ),
        **whatsapp.kinds(ctx),
    }
