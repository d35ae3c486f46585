"""Job handlers of the message lifecycle: submit to the carrier, apply delivery receipts.

Both are batch kinds, and their jobs carry several messages each (those one transaction queued for
the same time). A send batch takes its messages to `sending` in one transaction, submits them to the
carrier together (MMS fetch their media first, one by one), and records every answer, the
`message.sent` events and the receipt jobs in one more transaction, which also completes the jobs;
with the simulator, all of it happens in the first transaction. A receipt batch finalizes its
messages in one transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from signalpost.carriers import get_carrier
from signalpost.carriers.base import Carrier, LocalCarrier, SubmitResult
from signalpost.context import AppContext
from signalpost.kit.db import Database, UnitOfWork
from signalpost.kit.queue import (
    Job,
    JobKind,
    Outcomes,
    RetryPolicy,
    complete_many_within,
    finish_settled,
    held,
    settle,
)
from signalpost.messages import lifecycle, media
from signalpost.messages.lifecycle import Message
from signalpost.messages.sending import begin_sending_many, record_submissions, submission
from signalpost.messages.whatsapp import read as whatsapp_read
from signalpost.messages.whatsapp.send import channel as whatsapp_channel

BATCH_SIZE = 200


def message_ids(job: Job) -> list[str]:
    """The messages a `message.send` job carries."""
    ids = job.payload.get("message_ids")
    return [str(i) for i in ids] if ids is not None else [str(job.payload["message_id"])]


# Item outcomes, keyed `(job id, message id)` (see `kit.queue.settle`).
Later = dict[tuple[int, str], float]
Errors = dict[tuple[int, str], Exception]


async def send_batch(ctx: AppContext, db: Database, batch: Sequence[Job]) -> dict[int, Exception]:
    """Run `message.send` jobs; returns the outcomes of those not finished (see `JobKind`).

    With the simulator (a `LocalCarrier`), an SMS goes from `queued` to `sent` in the one
    transaction that also completes its job. Otherwise the messages are marked `sending` first, then
    submitted outside any transaction, and the carrier's answers are recorded in a second one.
    """
    carrier = get_carrier(ctx)
    local = carrier if isinstance(carrier, LocalCarrier) else None

    def answers_at_once(row: Message) -> bool:
        # The carrier answers within the transaction: nothing to fetch, no other channel.
        return local is not None and row["type"] != "WHATSAPP" and not media.needs_fetch(row)

    jobs_ = list({job.id: job for job in batch}.values())
    later: Later = {}
    errors: Errors = {}
    sending: list[tuple[Job, Message]] = []
    async with db.transaction() as uow:
        mine = await held(uow, jobs_)
        first: dict[str, Job] = {}  # a message named twice is sent once, by its first job
        for job in mine:
            for message_id in message_ids(job):
                first.setdefault(message_id, job)
        steps = await begin_sending_many(ctx, uow, list(first), unwritten=answers_at_once)
        at_once: list[tuple[Job, Message]] = []
        for message_id, job in first.items():
            step = steps[message_id]
            if step.retry_in is not None:
                later[job.id, message_id] = step.retry_in
            elif step.row is None:
                continue  # nothing left to send
            elif step.stored is not None:
                at_once.append((job, step.row))
            else:
                sending.append((job, step.row))
        if at_once:
            assert local is not None
            results = await local.submit_within(uow, [submission(r) for _, r in at_once])
            stored = {mid: s.stored for mid, s in steps.items() if s.stored is not None}
            retry = await record_submissions(
                ctx, uow, list(zip((r for _, r in at_once), results, strict=True)), stored=stored
            )
            _note_retries(at_once, retry, later)
        waiting = {job.id for job, _ in sending}  # settled after the carrier answered
        outcomes = await _settle(uow, [j for j in mine if j.id not in waiting], later, errors)
    if not sending:
        return outcomes

    ready = await _fill_all(ctx, db, sending, errors)
    answers = await _submit(ctx, ready, errors)

    async with db.transaction() as uow:
        recorded = await held(uow, [j for j in mine if j.id in waiting])
        recorded_ids = {j.id for j in recorded}
        answers = [a for a in answers if a[0].id in recorded_ids]
        retry = await record_submissions(ctx, uow, [(row, res) for _, row, res in answers])
        _note_retries([(job, row) for job, row, _ in answers], retry, later)
        outcomes.update(await _settle(uow, recorded, later, errors))
    return outcomes


async def _fill_all(
    ctx: AppContext, db: Database, sending: Sequence[tuple[Job, Message]], errors: Errors
) -> list[tuple[Job, Message]]:
    """MMS: fetch the media (40317 ends the message); a failure to fetch is that message's alone
    (in `errors`). Returns the messages ready for the carrier."""
    filled = await asyncio.gather(
        *(_fill(ctx, db, row) for _, row in sending), return_exceptions=True
    )
    ready: list[tuple[Job, Message]] = []
    for (job, row), got in zip(sending, filled, strict=True):
        if isinstance(got, Exception):
            errors[job.id, row["id"]] = got
        elif isinstance(got, BaseException):
            raise got
        elif got is not None:
            ready.append((job, got))
    return ready


def _note_retries(sent: list[tuple[Job, Message]], retry: dict[str, float], later: Later) -> None:
    """The messages the carrier throttled are submitted again after its delay."""
    for job, row in sent:
        if row["id"] in retry:
            later[job.id, row["id"]] = retry[row["id"]]


async def _settle(
    uow: UnitOfWork, jobs_: list[Job], later: Later, errors: Errors
) -> dict[int, Exception]:
    """Complete the jobs whose messages are done, queue those waiting in new jobs where a job must
    split; the outcomes of the others."""
    settled = settle(jobs_, message_ids, later, errors)
    return await finish_settled(
        uow, settled, lifecycle.SEND_JOB, "message_ids", max_attempts=lifecycle.SEND_ATTEMPTS
    )


async def _fill(ctx: AppContext, db: Database, row: Message) -> Message | None:
    if not media.needs_fetch(row):
        return row
    return await media.fill_for_send(ctx, db, lifecycle.as_row(row))


async def _submit(
    ctx: AppContext, ready: list[tuple[Job, Message]], errors: Errors
) -> list[tuple[Job, Message, SubmitResult]]:
    """Submit to each message's carrier (WhatsApp has its own channel), one call per carrier.

    A carrier that raises fails the jobs of its messages (they stay `sending` and are submitted
    again when the job is retried)."""
    groups: dict[int, tuple[Carrier, list[tuple[Job, Message]]]] = {}
    for job, row in ready:
        carrier = whatsapp_channel(ctx) if row["type"] == "WHATSAPP" else get_carrier(ctx)
        groups.setdefault(id(carrier), (carrier, []))[1].append((job, row))
    answers: list[tuple[Job, Message, SubmitResult]] = []
    for carrier, items in groups.values():
        try:
            results = await carrier.submit_many([submission(row) for _, row in items])
        except Exception as exc:
            for job, row in items:
                errors[job.id, row["id"]] = exc
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
        groups: dict[str | None, list[tuple[str, str, str | None]]] = {}
        for job in mine:
            groups.setdefault(job.payload.get("webhook_group"), []).extend(receipts(job))
        for group, items in groups.items():
            await lifecycle.apply_receipts(uow, items, webhook_group=group)
        await complete_many_within(uow, mine)


def kinds(ctx: AppContext) -> dict[str, JobKind]:
    from signalpost.messages.carrier_events import CarrierEvents

    # What carriers that answer on their own (SMPP) call back into (carriers.base.MessageEvents).
    ctx.extras.setdefault("message_events", CarrierEvents(ctx))

    async def send(db: Database, batch: list[Job]) -> Outcomes:
        return await send_batch(ctx, db, batch)

    async def receipt(db: Database, batch: list[Job]) -> None:
        await receipt_batch(db, batch)

    return {
        lifecycle.SEND_JOB: JobKind(
            batch=send,
            batch_size=BATCH_SIZE,
            size=lambda job: len(message_ids(job)),
            retry=RetryPolicy(max_attempts=10, base=0.5, cap=60),
        ),
        lifecycle.RECEIPT_JOB: JobKind(
            batch=receipt,
            batch_size=2 * BATCH_SIZE,  # a job carries the receipts of one send batch
            size=lambda job: len(receipts(job)),
            retry=RetryPolicy(max_attempts=10, base=0.5, cap=60),
        ),
        **whatsapp_read.kinds(ctx),
    }
