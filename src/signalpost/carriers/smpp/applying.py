"""The `smpp.deliver` jobs of a batch applied together: each receipt writes its part's status,
then the messages of all the batch's receipts are settled at once (one read of their statuses and
parts, one finalize: their webhooks go out as one delivery job, not one each)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from signalpost.carriers.base import MessageEvents
from signalpost.carriers.smpp import inbound
from signalpost.kit.clock import parse_datetime
from signalpost.kit.db import UnitOfWork


async def apply_many(
    uow: UnitOfWork,
    events: MessageEvents,
    payloads: Sequence[Mapping[str, Any]],
    *,
    duplicate_seconds: float,
    reassembly_seconds: float,
) -> list[float | None]:
    """For each payload: None when done, or the delay after which to apply it again."""
    delays: list[float | None] = [None] * len(payloads)
    to_settle: dict[int, str] = {}
    for index, payload in enumerate(payloads):
        pdu = inbound.from_payload(payload)
        if not pdu.is_receipt:
            delays[index] = await inbound.apply(
                uow,
                events,
                payload,
                duplicate_seconds=duplicate_seconds,
                reassembly_seconds=reassembly_seconds,
            )
            continue
        carrier, at = str(payload["carrier"]), parse_datetime(payload["at"])
        found = await inbound.record_receipt(uow, carrier, pdu, at)
        if isinstance(found, str):
            to_settle[index] = found
        else:
            delays[index] = found
    if to_settle:
        message_ids = list(dict.fromkeys(to_settle.values()))
        waiting = set(await inbound.settle_messages(uow, events, message_ids))
        for index, message_id in to_settle.items():
            if message_id in waiting:
                delays[index] = inbound.RETRY_NOT_SENT
    return delays
