"""`POST /v2/messages/whatsapp`: a WhatsApp message accepted, stored queued, and its channel."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import RowMapping

from signalpost.accounts.service import Organization
from signalpost.carriers import get_carrier
from signalpost.carriers.base import Carrier
from signalpost.carriers.simulator import SimulatorCarrier
from signalpost.context import AppContext
from signalpost.kit import ids, phone
from signalpost.kit.clock import utcnow
from signalpost.kit.db import UnitOfWork
from signalpost.kit.queue import enqueue_items
from signalpost.messages import ratelimit
from signalpost.messages import repository as repo
from signalpost.messages.errors import invalid_from, invalid_to, rejection
from signalpost.messages.lifecycle import SEND_ATTEMPTS, SEND_JOB, price_table
from signalpost.messages.pricing import CostBreakdown, Money, price
from signalpost.messages.whatsapp.models import ENCODING, WhatsappSend
from signalpost.messages.whatsapp.validation import check_message
from signalpost.messages.whatsapp.wire import stored_body, text_of

BSUID = re.compile(r"^[A-Z]{2}\.[0-9]{5,40}\Z")
CHANNEL_KEY = "whatsapp.channel"


def _check_to(to: str) -> None:
    if BSUID.match(to):
        return
    if phone.parse(to) is None:
        raise invalid_to(
            f"'{to}' is not a +E.164 phone number or a WhatsApp business-scoped user id."
        )


async def _profile(
    uow: UnitOfWork, org: Organization, req: WhatsappSend, number: RowMapping
) -> RowMapping:
    if req.messaging_profile_id:
        profile = await repo.profile(uow, org.id, req.messaging_profile_id)
        if profile is None:
            raise rejection(
                "40305",
                "Invalid 'from' address",
                f"Messaging profile {req.messaging_profile_id} does not exist.",
                "/messaging_profile_id",
            )
    elif number["messaging_profile_id"]:
        profile = await repo.profile(uow, org.id, number["messaging_profile_id"])
        assert profile is not None
    else:
        raise rejection(
            "10004",
            "Missing required parameter",
            f"{number['phone_number']} is on no messaging profile; give 'messaging_profile_id'.",
            "/messaging_profile_id",
            422,
        )
    if not profile["enabled"]:
        raise rejection(
            "40312", "Messaging profile disabled", "The messaging profile is disabled.", "/from"
        )
    return profile


async def _reserve(ctx: AppContext, uow: UnitOfWork, org: Organization, sender: str) -> float:
    """Queue the message behind the sender's WhatsApp throughput; the wait in seconds."""
    limits = ctx.settings.rate_limits
    if not limits.enabled:
        return 0.0
    limiters = [
        ratelimit.Limiter(f"sender:whatsapp:{sender}", limits.whatsapp),
        ratelimit.Limiter(f"org:{org.id}", limits.organization),
    ]
    slot = await ratelimit.admit(uow, limiters, time.time(), limits.max_backlog_seconds)
    return slot.backlog


async def send(
    ctx: AppContext, uow: UnitOfWork, org: Organization, req: WhatsappSend
) -> dict[str, Any]:
    """Accept a WhatsApp message: check it, store it queued and enqueue its sending."""
    kind = check_message(req.whatsapp_message)
    src, to = req.from_.strip(" "), req.to.strip(" ")
    if not phone.is_e164(src):
        raise invalid_from(f"'{src}' is not a +E.164 phone number.")
    number = await repo.owned_phone_number(uow, org.id, src)
    if number is None:
        raise invalid_from(f"{src} is not a phone number of this account.")
    if not number["whatsapp_enabled"]:
        raise invalid_from(
            f"{src} is not enabled for WhatsApp (signalpost numbers whatsapp enable {src})."
        )
    _check_to(to)
    profile = await _profile(uow, org, req, number)
    wait = await _reserve(ctx, uow, org, src)
    now = utcnow()
    row = _row(ctx, org, req, kind, profile["id"], now, wait)
    await repo.insert_messages(uow, [row])
    enqueue_items(
        uow,
        SEND_JOB,
        "message_ids",
        [row["id"]],
        run_at=now + timedelta(seconds=wait),
        max_attempts=SEND_ATTEMPTS,
    )
    return row


def _row(
    ctx: AppContext,
    org: Organization,
    req: WhatsappSend,
    kind: str,
    profile_id: str,
    now: datetime,
    wait: float,
) -> dict[str, Any]:
    """The `messages` row of an accepted WhatsApp message."""
    src, to = req.from_.strip(" "), req.to.strip(" ")
    text = text_of(req.whatsapp_message, kind)
    info = phone.parse(to)
    cost, breakdown = _price(ctx, to, info)
    return {
        "id": ids.new_uuid(),
        "organization_id": org.id,
        "direction": "outbound",
        "type": "WHATSAPP",
        "messaging_profile_id": profile_id,
        "sender_kind": "whatsapp",
        "from_number": src,
        "from_carrier": "SIGNALPOST",
        "from_line_type": "VoIP",
        "from_status": None,
        "to_number": to,
        "to_status": "queued",
        "to_carrier": (info.carrier if info else "") or "",
        "to_line_type": (info.line_type if info else "") or "",
        "cc": [],
        "text": text,
        "original_text": None,
        "subject": None,
        "media": [],
        "webhook_url": req.webhook_url or None,
        "webhook_failover_url": None,
        "use_profile_webhooks": True,
        "encoding": ENCODING,
        "parts": 1,
        "num_chars": len(text or ""),
        "smart_encoding_applied": False,
        "tags": [],
        "cost": cost,
        "cost_breakdown": breakdown,
        "errors": [],
        "body": stored_body(req.whatsapp_message, kind),
        "request": req.model_dump(by_alias=True, exclude_unset=True, mode="json"),
        "group_id": None,
        "autoresponse_type": None,
        "carrier_message_id": None,
        "carrier_attempts": 0,
        "received_at": now,
        "send_at": None,
        "sent_at": None,
        "completed_at": None,
        "valid_until": now + timedelta(seconds=ctx.settings.message_validity_seconds),
        "wait_seconds": round(wait, 3),
        "updated_at": now,
    }


def _price(ctx: AppContext, to: str, info: phone.NumberInfo | None) -> tuple[Money, CostBreakdown]:
    country = info.country_code if info else to[:2]  # a business-scoped id starts with it
    return price(
        price_table(ctx), sender_kind="whatsapp", country=country, message_type="WHATSAPP", parts=1
    )


def channel(ctx: AppContext) -> Carrier:
    """Where WhatsApp messages go: always the simulator (there is no WhatsApp upstream)."""
    carrier = get_carrier(ctx)
    if isinstance(carrier, SimulatorCarrier):
        return carrier
    sim: SimulatorCarrier | None = ctx.extras.get(CHANNEL_KEY)
    if sim is None:
        sim = SimulatorCarrier(ctx.db, ctx.settings.simulator_latency)
        ctx.extras[CHANNEL_KEY] = sim
    return sim
