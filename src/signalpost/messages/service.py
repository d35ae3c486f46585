"""Accepting messages: validation, encoding, pricing and throughput at the API, then stored queued.

The send job takes it from there (`sending`); status changes and their webhooks are `lifecycle`'s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import RowMapping

from signalpost.accounts.service import Organization
from signalpost.context import AppContext, outbound_guard
from signalpost.kit import ids, phone
from signalpost.kit.clock import parse_datetime, utcnow
from signalpost.kit.db import UnitOfWork
from signalpost.kit.errors import ApiError, not_found
from signalpost.kit.queue import enqueue_items
from signalpost.links import service as links
from signalpost.messages import ratelimit
from signalpost.messages import repository as repo
from signalpost.messages.encoding import MAX_PARTS, Analysis, EncodingError, analyze
from signalpost.messages.errors import rejection
from signalpost.messages.lifecycle import SEND_ATTEMPTS, SEND_JOB, Message, price_table, zero_cost
from signalpost.messages.media import plan_mms
from signalpost.messages.pricing import price
from signalpost.messages.senders import Endpoint as Endpoint
from signalpost.messages.senders import (
    Sender,
    check_destination,
    resolve_sender,
    validate_to_format,
)
from signalpost.messages.senders import SendRequest as SendRequest
from signalpost.optouts import service as optouts

# `auto_detect` flags an SMS longer than this many parts as unusually long (40328).
RECOMMENDED_MAX_PARTS = 6
MAX_MEDIA = 10


@dataclass(frozen=True)
class _Content:
    """What a message carries once checked: its type, text (as submitted and as sent) and media."""

    type: str
    text: str | None
    media: list[str]
    subject: str | None
    sent_text: str | None = None
    analysis: Analysis | None = None


def _parse_send_at(ctx: AppContext, raw: str, now: datetime) -> datetime:
    try:
        at = parse_datetime(raw)
    except ValueError:
        raise rejection(
            "10015", "Invalid value", "'send_at' must be an ISO 8601 date-time.", "/send_at"
        ) from None
    lead = (at - now).total_seconds()
    lo, hi = ctx.settings.schedule_min_lead_seconds, ctx.settings.schedule_max_lead_seconds
    if lead < lo or lead > hi:
        raise rejection(
            "10015",
            "Invalid send_at",
            f"'send_at' must be between {lo / 60:g} minutes and {hi / 86400:g} days from now.",
            "/send_at",
        )
    return at


async def send(
    ctx: AppContext, uow: UnitOfWork, org: Organization, req: SendRequest, *, defer: bool = False
) -> Message:
    """Accept one message: validate, store it queued (or scheduled) and enqueue its sending."""
    rows = await send_many(ctx, uow, org, [req], defer=defer)
    return rows[0]


async def send_many(
    ctx: AppContext,
    uow: UnitOfWork,
    org: Organization,
    reqs: list[SendRequest],
    *,
    defer: bool = False,
) -> Sequence[Message]:
    """Accept several messages in one unit of work (all or none); returns the stored rows.

    `defer`: the rows are inserted when the unit of work ends (group commit), so the caller must
    not read or change them in the same transaction.
    """
    now = utcnow()
    rows: list[dict[str, Any]] = []
    run_ats: list[datetime] = []
    for req in reqs:
        row, run_at = await _prepare(ctx, uow, org, req, now)
        rows.append(row)
        run_ats.append(run_at)
    await repo.insert_messages(uow, rows, defer=defer)
    # The messages of a transaction due at the same time share a send job.
    for row, run_at in zip(rows, run_ats, strict=True):
        enqueue_items(
            uow, SEND_JOB, "message_ids", [row["id"]], run_at=run_at, max_attempts=SEND_ATTEMPTS
        )
    return rows


async def _prepare(
    ctx: AppContext, uow: UnitOfWork, org: Organization, req: SendRequest, now: datetime
) -> tuple[dict[str, Any], datetime]:
    """Check one message and build its row; returns it with the time its send job is due."""
    to = req.to.strip(" ")
    validate_to_format(to)
    text = req.text if req.text else None
    media = list(req.media_urls)
    if text is None and not media:
        raise rejection("40316", "No content", "A message needs 'text' or 'media_urls'.", "/text")
    sender = await resolve_sender(uow, org, req)
    country = await _check_recipient(uow, sender, to, req.bypass_optout)
    content = _plan_type(ctx, sender, req, to, _Content("SMS", text, media, req.subject))
    message_id = ids.new_uuid()
    # Links are shortened first, so encoding and `parts` describe what the handset receives;
    # `original_text` keeps the text as submitted (links.service explains the rules).
    sent_text = content.text
    if sent_text is not None:
        sent_text = await links.shorten(
            uow,
            ctx.settings,
            org.id,
            message_id,
            sender.profile,
            to,
            sent_text,
            guard=outbound_guard(ctx),
            problems=req.link_problems,
        )
    content = replace(
        content, sent_text=sent_text, analysis=_analyze(content, sent_text, req, sender.profile)
    )
    send_at = _parse_send_at(ctx, req.send_at, now) if req.send_at else None
    wait = 0.0
    if send_at is None:
        wait = await _admit(ctx, uow, org, sender, now)
    run_at = send_at or (now + timedelta(seconds=wait))
    row = _outbound_row(ctx, org.id, req, sender, content, message_id, to, country)
    row.update(_times(ctx, now, send_at, wait))
    return row, run_at


async def _check_recipient(uow: UnitOfWork, sender: Sender, to: str, bypass_optout: bool) -> str:
    """The profile may send to `to` (40312, 40309, 40300 opted out); returns its country."""
    profile = sender.profile
    if not profile["enabled"]:
        raise rejection(
            "40312",
            "Messaging profile disabled",
            "The sender's messaging profile is disabled.",
            "/from",
        )
    country = check_destination(to, profile)
    if not bypass_optout and await optouts.is_blocked(uow, profile["id"], to):
        raise rejection(
            optouts.BLOCKED_CODE,
            optouts.BLOCKED_TITLE,
            f"{to} opted out of messages from this messaging profile (it sent STOP).",
            "/to",
            status=409,
        )
    return country


def _plan_type(
    ctx: AppContext, sender: Sender, req: SendRequest, to: str, content: _Content
) -> _Content:
    """SMS, or MMS when there is media (or `type` says so): checked, or fallen back to SMS."""
    media = content.media
    if not (media or req.type == "MMS"):
        return content
    if len(media) > MAX_MEDIA:
        raise rejection(
            "40317", "Invalid MMS content", f"At most {MAX_MEDIA} media URLs.", "/media_urls"
        )
    if sender.kind in ("short_code", "alphanumeric"):
        raise rejection(
            "40308",
            "Invalid 'from' address for MMS",
            f"A {sender.kind.replace('_', ' ')} cannot send MMS.",
            "/from",
        )
    # URL checks (40317), MMS-capable destination (40301) or the profile's SMS fallback.
    plan = plan_mms(
        ctx, profile=sender.profile, to=to, text=content.text, subject=req.subject, media_urls=media
    )
    return _Content(plan.type, plan.text, plan.media_urls, plan.subject)


def _analyze(
    content: _Content, sent_text: str | None, req: SendRequest, profile: RowMapping
) -> Analysis:
    """Encoding and parts of the text as sent (10015, 40302, 40328)."""
    smart = bool(profile["smart_encoding"]) and req.encoding != "ucs2"
    try:
        analysis = analyze(sent_text or "", requested=req.encoding, smart=smart)  # type: ignore[arg-type]
    except EncodingError as exc:
        raise rejection("10015", "Text cannot be encoded as GSM-7", str(exc), "/text") from None
    if content.type != "SMS":
        return analysis
    if analysis.parts > MAX_PARTS:
        raise rejection(
            "40302",
            "Message too large",
            f"The text needs {analysis.parts} parts; at most {MAX_PARTS}.",
            "/text",
        )
    if req.auto_detect and analysis.parts > RECOMMENDED_MAX_PARTS:
        raise rejection(
            "40328",
            "SMS exceeds recommended size",
            f"The text needs {analysis.parts} parts; the recommended limit is {RECOMMENDED_MAX_PARTS}.",
            "/text",
        )
    return analysis


async def _admit(
    ctx: AppContext, uow: UnitOfWork, org: Organization, sender: Sender, now: datetime
) -> float:
    """Queue the message behind its sender's and organization's throughput; the wait in seconds."""
    limiters = ratelimit.for_sender(
        ctx.settings.rate_limits, org.id, sender.kind, sender.number, sender.rate_limit
    )
    if not limiters:
        return 0.0
    slot = await ratelimit.admit(
        uow, limiters, now.timestamp(), ctx.settings.rate_limits.max_backlog_seconds
    )
    return slot.backlog


def _times(ctx: AppContext, now: datetime, send_at: datetime | None, wait: float) -> dict[str, Any]:
    return {
        "to_status": "scheduled" if send_at else "queued",
        "received_at": now,
        "send_at": send_at,
        "sent_at": None,
        "completed_at": None,
        "valid_until": (send_at or now) + timedelta(seconds=ctx.settings.message_validity_seconds),
        "wait_seconds": round(wait, 3),
        "updated_at": now,
    }


def _outbound_row(
    ctx: AppContext,
    org_id: str,
    req: SendRequest,
    sender: Sender,
    content: _Content,
    message_id: str,
    to: str,
    country: str,
) -> dict[str, Any]:
    """The `messages` row of an accepted message, but for its times (`_times`)."""
    analysis, text = content.analysis, content.text
    assert analysis is not None
    cost, breakdown = price(
        price_table(ctx),
        sender_kind=sender.kind,
        country=country,
        message_type=content.type,
        parts=analysis.parts or 1,
    )
    info = phone.parse(to)
    rewritten = analysis.smart_encoding_applied or content.sent_text != text
    return {
        "id": message_id,
        "organization_id": org_id,
        "direction": "outbound",
        "type": content.type,
        "messaging_profile_id": sender.profile["id"],
        "sender_kind": sender.kind,
        "from_number": sender.number,
        "from_carrier": "SIGNALPOST",
        "from_line_type": "" if sender.kind in ("short_code", "alphanumeric") else "VoIP",
        "to_number": to,
        "to_carrier": (info.carrier if info else "") or "",
        "to_line_type": (info.line_type if info else "") or "",
        "cc": req.cc,
        "text": analysis.text if text is not None else None,
        "original_text": text if rewritten else None,
        "subject": content.subject,
        "media": [
            {"url": u, "content_type": None, "sha256": None, "size": None} for u in content.media
        ],
        "webhook_url": req.webhook_url or None,
        "webhook_failover_url": req.webhook_failover_url or None,
        "use_profile_webhooks": req.use_profile_webhooks,
        "encoding": analysis.encoding,
        "parts": analysis.parts if content.type == "SMS" else 1,
        "num_chars": analysis.num_chars,
        "smart_encoding_applied": analysis.smart_encoding_applied,
        "tags": [],
        "cost": cost,
        "cost_breakdown": breakdown,
        "errors": [],
        "body": None,
        "request": req.request or None,
        "group_id": req.group_id,
        "autoresponse_type": req.autoresponse_type,
        "carrier_message_id": None,
        "carrier_attempts": 0,
    }


async def retrieve(uow: UnitOfWork, org: Organization, message_id: str) -> RowMapping:
    row = await repo.get(uow, message_id, org.id)
    if row is None:
        raise not_found("Message", f"Message {message_id} not found.")
    return row


async def cancel(uow: UnitOfWork, org: Organization, message_id: str) -> Message:
    """Cancel a scheduled message: only while it is scheduled and more than a minute away."""
    row = await repo.get_for_update(uow, message_id)
    if row is None or row["organization_id"] != org.id:
        raise not_found("Message", f"Message {message_id} not found.")
    if row["to_status"] != "scheduled":
        raise ApiError(
            403,
            "10010",
            "Message cannot be cancelled",
            f"Only scheduled messages can be cancelled; this one is {row['to_status']}.",
            should_retry=False,
        )
    if row["send_at"] is None or row["send_at"] - utcnow() <= timedelta(minutes=1):
        raise ApiError(
            403,
            "10010",
            "Message cannot be cancelled",
            "A scheduled message can be cancelled until one minute before its send_at.",
            should_retry=False,
        )
    now = utcnow()
    new = await repo.update_message(
        uow,
        message_id,
        {
            "to_status": "cancelled",
            "completed_at": now,
            "valid_until": None,
            "updated_at": now,
            **zero_cost(row),
        },
        only_status="scheduled",
    )
    assert new is not None
    return new


async def group(uow: UnitOfWork, org: Organization, group_id: str) -> list[RowMapping]:
    rows = await repo.group(uow, org.id, group_id)
    if not rows:
        raise not_found("Message group", f"Group message {group_id} not found.")
    return rows


def request_hash(path: str, body: bytes) -> str:
    return hashlib.sha256(path.encode() + b"\0" + body).hexdigest()
