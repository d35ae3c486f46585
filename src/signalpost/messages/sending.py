"""The send job's side of a message: claiming it for the carrier, and the carrier's answers.

What follows an accepted submission (on-net arrival, a simulated handset's reply, a WhatsApp read
receipt) is started here, after the statuses are written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import RowMapping

from signalpost.carriers.base import OutboundSubmit, SubmitResult
from signalpost.context import AppContext
from signalpost.kit import ids
from signalpost.kit.clock import iso, utcnow
from signalpost.kit.db import UnitOfWork
from signalpost.kit.queue import enqueue_many
from signalpost.messages import inbound, ratelimit
from signalpost.messages import repository as repo
from signalpost.messages.lifecycle import (
    RECEIPT_JOB,
    Final,
    Message,
    as_row,
    emit_events,
    finalize,
    finalize_many,
)
from signalpost.messages.whatsapp.read import after_sent
from signalpost.optouts import service as optouts

log = logging.getLogger("signalpost.messages")


@dataclass(frozen=True)
class SendStep:
    """What the send job decided before talking to the carrier.

    `row` is the message as it goes to the carrier (`sending`). `stored` is the row as the database
    still holds it when `sending` was not written (`begin_sending_many(..., unwritten=)`): the
    carrier's answer is then recorded in the same transaction, from that row.
    """

    row: Message | None
    retry_in: float | None = None
    stored: Message | None = None


async def begin_sending(ctx: AppContext, uow: UnitOfWork, message_id: str) -> SendStep:
    """Claim a queued message for submission, or finish it if it can no longer be sent."""
    row = await repo.get_for_update(uow, message_id)
    if row is None or row["to_status"] not in ("queued", "sending", "scheduled"):
        return SendStep(None)
    now = utcnow()
    if row["to_status"] == "scheduled":
        row = await _release_scheduled(ctx, uow, row, now)
        if row is None:
            return SendStep(None)
        if row["to_status"] == "queued" and (row["wait_seconds"] or 0) > 0:
            return SendStep(None, retry_in=float(row["wait_seconds"]))
    if row["valid_until"] is not None and now > row["valid_until"]:
        await finalize(uow, row, "expired", "40014", billed=False)
        return SendStep(None)
    if _recheck_optout(row) and await optouts.blocked_code(
        uow, row["messaging_profile_id"], row["to_number"]
    ):
        # The handset opted out while this message waited in the sender's queue.
        await finalize(uow, row, "sending_failed", optouts.BLOCKED_CODE, billed=False)
        return SendStep(None)
    new = await repo.update_message(
        uow,
        message_id,
        {
            "to_status": "sending",
            "carrier_attempts": row["carrier_attempts"] + 1,
            "updated_at": now,
        },
    )
    return SendStep(new)


def _recheck_optout(row: Message) -> bool:
    """Whether the message waited in its sender's queue, so an opt-out may have come meanwhile."""
    return bool(
        row["carrier_attempts"] == 0
        and (row["wait_seconds"] or 0) > 0
        and row["autoresponse_type"] is None
    )


async def begin_sending_many(
    ctx: AppContext,
    uow: UnitOfWork,
    message_ids: Sequence[str],
    *,
    unwritten: Callable[[Message], bool] | None = None,
) -> dict[str, SendStep]:
    """`begin_sending` for several messages with one read and a few writes in all; a scheduled
    message being released takes `begin_sending`'s own path.

    `unwritten(row)`: the messages whose carrier answers within this transaction (see
    `record_submissions`' `stored`); their `sending` status is not written, only returned.
    """
    rows = await repo.get_many_for_update(uow, message_ids)
    now = utcnow()
    steps: dict[str, SendStep] = {}
    changes: list[tuple[str, Mapping[str, Any]]] = []
    finals: list[Final] = []
    for message_id in message_ids:
        row = rows.pop(message_id, None)  # a message named twice goes on once
        steps.setdefault(message_id, SendStep(None))
        if row is None or row["to_status"] not in ("queued", "sending", "scheduled"):
            continue
        if row["to_status"] == "scheduled":
            steps[message_id] = await begin_sending(ctx, uow, message_id)
        elif row["valid_until"] is not None and now > row["valid_until"]:
            finals.append(Final(row, "expired", "40014", billed=False))
        elif _recheck_optout(row) and await optouts.blocked_code(
            uow, row["messaging_profile_id"], row["to_number"]
        ):
            # The handset opted out while this message waited in the sender's queue.
            finals.append(Final(row, "sending_failed", optouts.BLOCKED_CODE, billed=False))
        else:
            values = {
                "to_status": "sending",
                "carrier_attempts": row["carrier_attempts"] + 1,
                "updated_at": now,
            }
            if unwritten is not None and unwritten(row):
                steps[message_id] = SendStep({**row, **values}, stored=row)
            else:
                changes.append((message_id, values))
                steps[message_id] = SendStep({**row, **values})
    await repo.update_many(uow, changes)
    await finalize_many(uow, finals)
    return steps


async def _release_scheduled(
    ctx: AppContext, uow: UnitOfWork, row: RowMapping, now: datetime
) -> RowMapping | None:
    """A scheduled message's time has come: it joins the sender's queue like a new message."""
    fields = {"message_id": row["id"], "send_at": iso(row["send_at"])}
    if row["autoresponse_type"] is None:
        error = await optouts.blocked_code(uow, row["messaging_profile_id"], row["to_number"])
        if error:
            log.info(
                "scheduled message %s not sent: its recipient opted out", row["id"], extra=fields
            )
            await finalize(uow, row, "sending_failed", error, billed=False)
            return None
    log.info(
        "scheduled message %s fires (send_at %s) from %s to %s",
        row["id"],
        fields["send_at"],
        row["from_number"],
        row["to_number"],
        extra=fields,
    )
    wait = 0.0
    kind = row["sender_kind"] or "long_code"
    limiters = ratelimit.for_sender(
        ctx.settings.rate_limits,
        row["organization_id"],
        kind,
        row["from_number"],
        await _rate_override(uow, row["organization_id"], kind, row["from_number"]),
    )
    if limiters:
        slot = await ratelimit.reserve(uow, limiters, now.timestamp())
        wait = slot.backlog
    return await repo.update_message(
        uow,
        row["id"],
        {
            "to_status": "queued",
            "wait_seconds": round(wait, 3),
            "valid_until": now + timedelta(seconds=ctx.settings.message_validity_seconds),
            "updated_at": now,
        },
    )


async def _rate_override(uow: UnitOfWork, org_id: str, kind: str, number: str) -> float | None:
    """The sender's own messages-per-second setting, if it has one."""
    if kind == "short_code":
        sc = await repo.owned_short_code(uow, org_id, number)
        return sc["rate_limit"] if sc else None
    if kind in ("long_code", "toll_free"):
        pn = await repo.owned_phone_number(uow, org_id, number)
        return pn["rate_limit"] if pn else None
    return None


def submission(row: Message) -> OutboundSubmit:
    return OutboundSubmit(
        message_id=row["id"],
        organization_id=row["organization_id"],
        from_number=row["from_number"],
        to_number=row["to_number"],
        text=row["text"],
        media_urls=[m["url"] for m in row["media"] or []],
        parts=row["parts"],
        encoding=row["encoding"],
        attempt=row["carrier_attempts"],
        messaging_profile_id=row["messaging_profile_id"],
    )


async def record_submission(
    ctx: AppContext, uow: UnitOfWork, row: Message, result: SubmitResult
) -> float | None:
    """Apply the carrier's answer. Returns a delay when the message must be submitted again."""
    retry = await record_submissions(ctx, uow, [(row, result)])
    return retry.get(row["id"])


async def record_submissions(
    ctx: AppContext,
    uow: UnitOfWork,
    answers: Sequence[tuple[Message, SubmitResult]],
    *,
    stored: Mapping[str, Message] | None = None,
) -> dict[str, float]:
    """Apply the carrier's answers to messages it was given (now `sending`), all in a few
    statements. Returns, by message id, the delay after which a message must be submitted again
    (the carrier throttled it). A message no longer `sending` (a repeated run recorded it first)
    is left alone.

    `stored`: the rows as this transaction read them, by id, when their `sending` status was never
    written (the carrier answered within the transaction); they are not read again.
    """
    rows: dict[str, Message]
    if stored is None:
        rows = dict(await repo.get_many_for_update(uow, [row["id"] for row, _ in answers]))
        expected: tuple[str, ...] = ("sending",)
    else:
        rows = dict(stored)
        expected = ("queued", "sending")
    out = _Answers(utcnow())
    for message, result in answers:
        row = rows.get(message["id"])
        # (deferred: the process holding the carrier's bind records the answer)
        if row is not None and row["to_status"] in expected and result.outcome != "deferred":
            rows.pop(message["id"])  # one answer per message
            out.add(row, message, result)
    for status, status_changes in out.changes.items():
        await repo.update_many(uow, status_changes, only_status=status)
    # Events, their jobs and the receipt jobs go in when the unit of work ends: one statement
    # per table. The receipts due at the same time share one job. The `message.finalized` events
    # the receipts cause join the queue group of these `message.sent` events: their delivery
    # waits for these to be done with (in the usual case; `webhooks.jobs` checks each event too).
    group = f"webhooks:{ids.new_uuid()}"
    sent = out.sent
    await emit_events(uow, [(new, "message.sent") for new, _ in sent], defer=True, group_key=group)
    await _enqueue_receipts(uow, sent, group)
    for new, result in sent:
        # On-net arrival or a simulated handset's reply; the simulated WhatsApp read receipt.
        # Both return at once, without a statement, for the messages that need neither.
        await inbound.after_submission(ctx, uow, as_row(new), result)
        await after_sent(uow, as_row(new), result)
    await finalize_many(uow, out.finals)
    return out.retry


@dataclass
class _Answers:
    """The carrier's answers sorted into what `record_submissions` writes."""

    now: datetime
    sent: list[tuple[Message, SubmitResult]] = field(default_factory=list)
    changes: dict[str, list[tuple[str, Mapping[str, Any]]]] = field(default_factory=dict)
    finals: list[Final] = field(default_factory=list)
    retry: dict[str, float] = field(default_factory=dict)

    def add(self, row: Message, message: Message, result: SubmitResult) -> None:
        """`row`: the message as stored; `message`: as it went to the carrier."""
        now = self.now
        common = {
            "to_carrier": result.to_carrier or row["to_carrier"],
            "to_line_type": result.to_line_type,
            "carrier_attempts": message["carrier_attempts"],
        }
        if result.outcome == "accepted":
            values = {
                **common,
                "to_status": "sent",
                "sent_at": now,
                "valid_until": None,
                "carrier_message_id": result.carrier_message_id,
                "updated_at": now,
            }
            sent_row = {**row, **values}
            self.sent.append((sent_row, result))
            change: Mapping[str, Any] = {k: sent_row[k] for k in _SENT_COLUMNS}
        elif result.outcome == "throttled":
            retry_at = now + timedelta(seconds=result.retry_after)
            if row["valid_until"] is not None and retry_at > row["valid_until"]:
                self.finals.append(Final(row, "expired", "40014", billed=False, extra=common))
                return
            change = {**common, "to_status": "queued", "updated_at": now}
            self.retry[row["id"]] = result.retry_after
        else:
            error = result.error_code or "40008"
            self.finals.append(Final(row, "sending_failed", error, False, common))
            return
        # by the status they replace
        self.changes.setdefault(row["to_status"], []).append((row["id"], change))


async def _enqueue_receipts(
    uow: UnitOfWork, sent: Sequence[tuple[Message, SubmitResult]], group: str
) -> None:
    """The receipts the carrier will send, one job per due time (when the unit of work ends)."""
    receipts: dict[float, list[dict[str, Any]]] = {}
    for new, result in sent:
        if result.receipt is not None:
            receipts.setdefault(result.receipt.after, []).append(
                {
                    "message_id": new["id"],
                    "status": result.receipt.status,
                    "error_code": result.receipt.error_code,
                }
            )
    await enqueue_many(
        uow,
        [
            {
                "kind": RECEIPT_JOB,
                "payload": {"receipts": items, "webhook_group": group},
                "delay": after,
            }
            for after, items in receipts.items()
        ],
        defer=True,
    )


_SENT_COLUMNS = (
    "to_carrier",
    "to_line_type",
    "carrier_attempts",
    "to_status",
    "sent_at",
    "valid_until",
    "carrier_message_id",
    "updated_at",
)
