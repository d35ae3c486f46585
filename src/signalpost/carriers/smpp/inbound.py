"""What a deliver_sm carries, applied in the database: a receipt finds its part through the
correlator and, once the message's parts allow it, gives the message its final status; an inbound
message (MO) is de-duplicated, reassembled when concatenated, and handed to the inbound path.

The session writes each deliver_sm as a `smpp.deliver` job (and acknowledges it after that commit);
`apply` runs for those jobs. It returns None when the job is done, or a delay to run it again (a
receipt that came before its submit_sm_resp was recorded, or while its message is not `sent` yet).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import RowMapping

from signalpost.carriers.base import MessageEvents, ReceiptStatus
from signalpost.carriers.smpp import store
from signalpost.carriers.smpp.codec import decode_text, sar_concat, split_udh
from signalpost.carriers.smpp.outcomes import ReceiptInfo, parse_receipt
from signalpost.carriers.smpp.pdu import DeliverSmPdu
from signalpost.kit.clock import parse_datetime, utcnow
from signalpost.kit.db import UnitOfWork

log = logging.getLogger("signalpost.smpp")

DELIVER_JOB = "smpp.deliver"
UNMATCHED_RECEIPT_SECONDS = 600.0  # how long a receipt waits for its part to be recorded
RETRY_UNMATCHED = 1.0
RETRY_NOT_SENT = 0.3


def to_payload(carrier: str, pdu: DeliverSmPdu) -> dict[str, Any]:
    return {
        "carrier": carrier,
        "at": utcnow().isoformat(),
        "source": pdu.source_addr,
        "source_ton": pdu.source_ton,
        "destination": pdu.destination_addr,
        "destination_ton": pdu.dest_ton,
        "esm_class": pdu.esm_class,
        "data_coding": pdu.data_coding,
        "short_message": pdu.short_message.hex(),
        "tlvs": [[tag, value.hex()] for tag, value in pdu.tlvs],
    }


def from_payload(payload: Mapping[str, Any]) -> DeliverSmPdu:
    return DeliverSmPdu(
        sequence_num=0,
        service_type="",
        source_ton=int(payload["source_ton"]),
        source_npi=0,
        source_addr=str(payload["source"]),
        dest_ton=int(payload["destination_ton"]),
        dest_npi=0,
        destination_addr=str(payload["destination"]),
        esm_class=int(payload["esm_class"]),
        data_coding=int(payload["data_coding"]),
        short_message=bytes.fromhex(payload["short_message"]),
        tlvs=tuple((int(t), bytes.fromhex(v)) for t, v in payload["tlvs"]),
    )


def address(addr: str, ton: int) -> str:
    """An SMPP address as signalpost writes it: +E.164 for international numbers (and long digit
    strings), as is for short codes and alphanumeric senders."""
    if addr.startswith("+") or not addr.isdigit():
        return addr
    return f"+{addr}" if ton == 1 or len(addr) > 8 else addr


def final_status(parts: Sequence[RowMapping]) -> tuple[ReceiptStatus, str | None] | None:
    """A message's status from its parts' receipts: failed (or expired) as soon as one part is,
    delivered when all are, unconfirmed when all are final and some unconfirmed; else None."""
    for wanted in ("delivery_failed", "expired"):
        for p in parts:
            if p["status"] == wanted:
                return wanted, p["error_code"]
    total = max((p["parts"] for p in parts), default=0)
    if len(parts) < total or any(p["status"] == "sent" for p in parts):
        return None
    if all(p["status"] == "delivered" for p in parts):
        return "delivered", None
    return "delivery_unconfirmed", None


async def settle_messages(
    uow: UnitOfWork, events: MessageEvents, message_ids: Sequence[str]
) -> list[str]:
    """Finalize the `sent` messages whose parts allow it; returns those not `sent` yet.

    The messages are locked first: receipts of the parts of one message applied at once in two
    transactions then see each other's parts (the second reads them after the first committed)."""
    statuses = await events.statuses(uow, message_ids)
    parts = await store.parts_of(uow, message_ids)
    finals = {mid: final_status(parts.get(mid, [])) for mid in message_ids}
    wanted = [mid for mid, f in finals.items() if f is not None]
    ready = []
    waiting = []
    for mid in wanted:
        final = finals[mid]
        assert final is not None
        if statuses.get(mid) == "sent":
            ready.append((mid, final[0], final[1]))
        elif statuses.get(mid) in ("sending", "queued"):
            waiting.append(mid)
    await events.finalize(uow, ready)
    return waiting


async def apply_many(
    uow: UnitOfWork,
    events: MessageEvents,
    payloads: Sequence[Mapping[str, Any]],
    *,
    duplicate_seconds: float,
    reassembly_seconds: float,
) -> list[float | None]:
    """Apply `smpp.deliver` payloads; for each, None (done) or the delay to run it again. The
    receipts among them take a few statements in all."""
    out: list[float | None] = [None] * len(payloads)
    receipts: list[tuple[int, str, ReceiptInfo, datetime]] = []
    for i, payload in enumerate(payloads):
        pdu = from_payload(payload)
        carrier = str(payload["carrier"])
        if not pdu.is_receipt:
            await _mo(uow, events, carrier, pdu, duplicate_seconds, reassembly_seconds)
            continue
        body = split_udh(pdu.short_message)[1] if pdu.has_udh else pdu.short_message
        info = parse_receipt(decode_text(body, pdu.data_coding), pdu.tlvs)
        if info is None:
            log.warning("smpp %s: a receipt without a message id was dropped", carrier)
        elif info.status is not None:  # (None: intermediate, ENROUTE or ACCEPTD)
            receipts.append((i, carrier, info, parse_datetime(payload["at"])))
    if receipts:
        await _receipts(uow, events, receipts, out)
    return out


async def _receipts(
    uow: UnitOfWork,
    events: MessageEvents,
    receipts: Sequence[tuple[int, str, ReceiptInfo, datetime]],
    out: list[float | None],
) -> None:
    found = await store.find_parts(uow, [(c, r.carrier_message_id) for _, c, r, _ in receipts])
    changes: list[tuple[str, str, str, str | None]] = []
    by_message: dict[str, list[int]] = {}
    now = utcnow()
    for i, carrier, info, at in receipts:
        part = found.get((carrier, info.carrier_message_id))
        if part is None:
            if (now - at).total_seconds() < UNMATCHED_RECEIPT_SECONDS:
                out[i] = RETRY_UNMATCHED  # its submit_sm_resp is not recorded yet
            else:
                log.warning(
                    "smpp %s: receipt for unknown id %s dropped", carrier, info.carrier_message_id
                )
            continue
        assert info.status is not None
        changes.append((carrier, info.carrier_message_id, info.status, info.error_code))
        by_message.setdefault(part["message_id"], []).append(i)
    await store.set_part_statuses(uow, changes)
    for message_id in await settle_messages(uow, events, sorted(by_message)):
        for i in by_message[message_id]:
            out[i] = RETRY_NOT_SENT  # final once the message is `sent`


def _digest(carrier: str, pdu: DeliverSmPdu) -> str:
    h = hashlib.sha256()
    for piece in (carrier, pdu.source_addr, pdu.destination_addr, str(pdu.esm_class)):
        h.update(piece.encode() + b"\0")
    h.update(bytes([pdu.data_coding]) + pdu.short_message)
    for tag, value in sorted(pdu.tlvs):
        h.update(tag.to_bytes(2, "big") + value)
    return h.hexdigest()


async def _mo(
    uow: UnitOfWork,
    events: MessageEvents,
    carrier: str,
    pdu: DeliverSmPdu,
    duplicate_seconds: float,
    reassembly_seconds: float,
) -> None:
    now = utcnow()
    keep = now + timedelta(seconds=max(duplicate_seconds, 1.0))
    if duplicate_seconds > 0 and not await store.first_sighting(
        uow, _digest(carrier, pdu), now, keep
    ):
        return  # the SMSC sent it again (it saw no answer): delivered already
    concat, body = split_udh(pdu.short_message) if pdu.has_udh else (None, pdu.short_message)
    if concat is None:
        concat = sar_concat(pdu.tlvs)
    text = decode_text(body, pdu.data_coding)
    source = address(pdu.source_addr, pdu.source_ton)
    destination = address(pdu.destination_addr, pdu.dest_ton)
    if concat is None or concat.total <= 1:
        await events.inbound(uow, source, destination, text, carrier)
        return
    key = f"{carrier}/{source}/{destination}/{concat.reference}/{concat.total}"
    await store.lock_mo(uow, key)
    await store.add_mo_part(
        uow,
        {
            "key": key,
            "seq": concat.seq,
            "total": concat.total,
            "source": source,
            "destination": destination,
            "text": text,
            "done": False,
            "received_at": now,
            "expires_at": now + timedelta(seconds=reassembly_seconds + duplicate_seconds),
        },
    )
    parts = [p for p in await store.mo_parts(uow, key) if not p["done"]]
    if len(parts) >= concat.total:
        await deliver_parts(uow, events, carrier, key, parts)


async def deliver_parts(
    uow: UnitOfWork, events: MessageEvents, carrier: str, key: str, parts: Sequence[RowMapping]
) -> None:
    """Deliver the parts received of a concatenated message as one message (once)."""
    if not parts or await store.close_mo(uow, key) == 0:
        return
    ordered = sorted(parts, key=lambda p: p["seq"])
    text = "".join(p["text"] for p in ordered)
    await events.inbound(uow, ordered[0]["source"], ordered[0]["destination"], text, carrier)
