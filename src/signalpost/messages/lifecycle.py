"""The message lifecycle: status changes to final, their webhooks, prices.

The send pipeline (`service`, `sending`), inbound, media and WhatsApp all change a message's status
through here; this module imports none of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy.engine import RowMapping

from signalpost.context import AppContext
from signalpost.kit.clock import utcnow
from signalpost.kit.db import UnitOfWork
from signalpost.messages import repository as repo
from signalpost.messages.errors import delivery_error
from signalpost.messages.pricing import PriceTable
from signalpost.messages.schemas import outbound_payload
from signalpost.webhooks import service as webhooks

Message = Mapping[Any, Any]  # a `messages` row (dict or RowMapping)

# Messages to submit to the carrier: `{"message_ids": [...]}` (once `{"message_id": ...}`).
SEND_JOB = "message.send"
SEND_ATTEMPTS = 10
# Delivery receipts to apply later: `{"receipts": [{"message_id", "status", "error_code"}, …]}`,
# the receipts of one send batch due at the same time in one job.
RECEIPT_JOB = "message.receipt"
FINAL_STATUSES = frozenset(
    {
        "delivered",
        "delivery_failed",
        "delivery_unconfirmed",
        "sending_failed",
        "expired",
        "cancelled",
    }
)


def price_table(ctx: AppContext) -> PriceTable:
    table: PriceTable | None = ctx.extras.get("price_table")
    if table is None:
        table = PriceTable.model_validate(ctx.settings.pricing or {})
        ctx.extras["price_table"] = table
    return table


async def emit_event(uow: UnitOfWork, row: Message, event_type: str) -> None:
    """Queue the webhook for a status change of an outbound message (message URLs, then profile's)."""
    await emit_events(uow, [(row, event_type)])


async def emit_events(
    uow: UnitOfWork,
    changes: Sequence[tuple[Message, str]],
    *,
    defer: bool = False,
    group_key: str | None = None,
) -> None:
    """`emit_event` for several messages: their profiles read once, events and jobs stored together
    (with `defer`, when the unit of work ends; `group_key`, the queue group of their delivery jobs:
    see `webhooks.emit_many`)."""
    if not changes:
        return
    profiles = await repo.profiles_by_id(
        uow, [row["messaging_profile_id"] for row, _ in changes if row["messaging_profile_id"]]
    )
    specs = []
    for row, event_type in changes:
        urls = webhooks.resolve_urls(
            row["webhook_url"],
            row["webhook_failover_url"],
            bool(row["use_profile_webhooks"]),
            profiles.get(row["messaging_profile_id"] or ""),
        )
        specs.append(
            webhooks.EventSpec(
                organization_id=row["organization_id"],
                event_type=event_type,
                payload=outbound_payload(row, for_webhook=True),
                urls=urls,
                message_id=row["id"],
            )
        )
    await webhooks.emit_many(uow, specs, defer=defer, group_key=group_key)


def zero_cost(row: Message) -> dict[str, Any]:
    currency = (row["cost"] or {}).get("currency", "USD")
    zero = {"amount": "0.0000", "currency": currency}
    return {"cost": zero, "cost_breakdown": {"rate": zero, "carrier_fee": zero}}


def _final_values(
    row: Message, status: str, error_code: str | None, billed: bool, now: datetime
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "to_status": status,
        "completed_at": now,
        "valid_until": None,
        "updated_at": now,
    }
    if error_code:
        values["errors"] = [*list(row["errors"] or []), delivery_error(error_code)]
    if not billed:
        values.update(zero_cost(row))
    return values


async def finalize(
    uow: UnitOfWork,
    row: Message,
    status: str,
    error_code: str | None = None,
    *,
    billed: bool = True,
    from_status: str | None = None,
) -> RowMapping | None:
    """Move a message to a final status and queue `message.finalized` (once)."""
    values = _final_values(row, status, error_code, billed, utcnow())
    new = await repo.update_message(
        uow, row["id"], values, only_status=from_status or row["to_status"]
    )
    if new is not None:
        await emit_event(uow, new, "message.finalized")
    return new


@dataclass(frozen=True)
class Final:
    """A final status for `finalize_many`; `extra` are further columns changed with it."""

    row: Message
    status: str
    error_code: str | None = None
    billed: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)


async def finalize_many(
    uow: UnitOfWork, finals: Sequence[Final], *, webhook_group: str | None = None
) -> list[Message]:
    """`finalize` for several messages read (and locked) in this transaction with
    `repo.get_many_for_update`, each still in its `row`'s status; returns the new rows.

    The events and their jobs (in queue group `webhook_group`) are inserted when the unit of work
    ends."""
    if not finals:
        return []
    now = utcnow()
    by_status: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    new_rows: list[Message] = []
    for f in finals:
        values = {**f.extra, **_final_values(f.row, f.status, f.error_code, f.billed, now)}
        by_status.setdefault(f.row["to_status"], []).append((f.row["id"], values))
        new_rows.append({**f.row, **values})
    for status, changes in by_status.items():
        await repo.update_many(uow, changes, only_status=status)
    await emit_events(
        uow,
        [(row, "message.finalized") for row in new_rows],
        defer=True,
        group_key=webhook_group,
    )
    return new_rows


def as_row(message: Message) -> RowMapping:
    """A message row built in memory (the old row plus the values written), for functions typed
    for rows read from the database; they only read it by column name."""
    return cast(RowMapping, message)


async def apply_receipt(
    uow: UnitOfWork, message_id: str, status: str, error_code: str | None
) -> None:
    """A delivery receipt from the carrier: the final status of a sent message."""
    await apply_receipts(uow, [(message_id, status, error_code)])


async def apply_receipts(
    uow: UnitOfWork,
    receipts: Sequence[tuple[str, str, str | None]],
    *,
    webhook_group: str | None = None,
) -> None:
    """Delivery receipts `(message_id, status, error_code)`: each `sent` message becomes final
    (its `message.finalized` event delivered in queue group `webhook_group`)."""
    rows = await repo.get_many_for_update(uow, [r[0] for r in receipts])
    finals: list[Final] = []
    for message_id, status, error_code in receipts:
        row = rows.pop(message_id, None)  # a second receipt for one message finds it final
        if row is not None and row["to_status"] == "sent":
            finals.append(Final(row, status, error_code))
    await finalize_many(uow, finals, webhook_group=webhook_group)
