"""Sending messages: validation, sender resolution, encoding, pricing, throughput, lifecycle."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy.engine import RowMapping

from signalpost.accounts.service import Organization
from signalpost.carriers.base import OutboundSubmit, SubmitResult
from signalpost.context import AppContext
from signalpost.kit import ids, phone
from signalpost.kit.clock import parse_datetime, utcnow
from signalpost.kit.db import UnitOfWork
from signalpost.kit.errors import ApiError, not_found
from signalpost.kit.queue import enqueue_items, enqueue_many
from signalpost.links import service as links
from signalpost.messages import pool, ratelimit
from signalpost.messages import repository as repo
from signalpost.messages.encoding import MAX_PARTS, EncodingError, analyze
from signalpost.messages.errors import delivery_error, invalid_from, invalid_to, rejection
from signalpost.messages.media import plan_mms
from signalpost.messages.pricing import PriceTable, price
from signalpost.messages.schemas import outbound_payload
from signalpost.optouts import service as optouts

Endpoint = Literal["messages", "long_code", "short_code", "number_pool", "alphanumeric", "schedule"]
SenderKind = Literal["long_code", "toll_free", "short_code", "alphanumeric"]
Message = Mapping[Any, Any]  # a `messages` row (dict or RowMapping)

# Messages to submit to the carrier: `{"message_ids": [...]}` (once `{"message_id": ...}`).
SEND_JOB = "message.send"
SEND_ATTEMPTS = 10
# Delivery receipts to apply later: `{"receipts": [{"message_id", "status", "error_code"}, …]}`,
# the receipts of one send batch due at the same time in one job.
RECEIPT_JOB = "message.receipt"

# `auto_detect` flags an SMS longer than this many parts as unusually long (40328).
RECOMMENDED_MAX_PARTS = 6
MAX_MEDIA = 10
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


@dataclass(frozen=True)
class SendRequest:
    """Every send endpoint's body, normalised."""

    endpoint: Endpoint
    to: str
    from_: str | None = None
    messaging_profile_id: str | None = None
    text: str | None = None
    subject: str | None = None
    media_urls: list[str] = field(default_factory=list)
    type: str | None = None
    encoding: str = "auto"
    auto_detect: bool = False
    use_profile_webhooks: bool = True
    webhook_url: str | None = None
    webhook_failover_url: str | None = None
    send_at: str | None = None
    group_id: str | None = None
    cc: list[dict[str, Any]] = field(default_factory=list)
    request: dict[str, Any] = field(default_factory=dict)
    # Auto-replies to inbound keywords: never blocked by the opt-out they confirm.
    bypass_optout: bool = False
    autoresponse_type: str | None = None


@dataclass(frozen=True)
class Sender:
    number: str
    kind: SenderKind
    profile: RowMapping
    rate_limit: float | None


def price_table(ctx: AppContext) -> PriceTable:
    table: PriceTable | None = ctx.extras.get("price_table")
    if table is None:
        table = PriceTable.model_validate(ctx.settings.pricing or {})
        ctx.extras["price_table"] = table
    return table


def _kind_of_number(row: RowMapping) -> SenderKind:
    return "toll_free" if row["type"] in ("toll-free", "tollfree") else "long_code"


async def _profile_of(uow: UnitOfWork, org: Organization, profile_id: str | None) -> RowMapping:
    if not profile_id:
        raise invalid_from("The sender is not assigned to a messaging profile.")
    profile = await _profile(uow, org.id, profile_id)
    if profile is None:
        raise invalid_from("The sender's messaging profile does not exist.")
    return profile


async def _profile(uow: UnitOfWork, org_id: str, profile_id: str) -> RowMapping | None:
    return await uow.memo(
        ("profile", org_id, profile_id), lambda: repo.profile(uow, org_id, profile_id)
    )


async def resolve_sender(uow: UnitOfWork, org: Organization, req: SendRequest) -> Sender:
    """Find and check the sending address for the endpoint used (40305, 40306)."""
    src = (req.from_ or "").strip()
    if req.endpoint == "number_pool":
        return await _pool_sender(uow, org, req)
    if req.endpoint == "alphanumeric" or (
        req.endpoint in ("messages", "schedule") and src and phone.ALPHANUMERIC.match(src)
    ):
        if not src or not phone.ALPHANUMERIC.match(src):
            raise invalid_from(
                "'from' must be an alphanumeric sender ID of 1-11 letters, digits or spaces."
            )
        if not req.messaging_profile_id:
            raise rejection(
                "10004",
                "Missing required parameter",
                "'messaging_profile_id' is required to send with an alphanumeric sender ID.",
                "/messaging_profile_id",
                422,
            )
        profile = await _profile(uow, org.id, req.messaging_profile_id)
        if profile is None:
            raise rejection(
                "40305",
                "Invalid 'from' address",
                "The messaging profile does not exist.",
                "/messaging_profile_id",
            )
        alpha = await repo.alphanumeric_sender(uow, org.id, profile["id"], src)
        if alpha is None:
            raise rejection(
                "40306",
                "Alphanumeric sender ID not configured",
                f"'{src}' is not a registered alphanumeric sender ID of this messaging profile.",
                "/from",
            )
        return Sender(src, "alphanumeric", profile, None)

    if not src:
        raise rejection(
            "10004",
            "Missing required parameter",
            "'from' is required for this endpoint.",
            "/from",
            422,
        )
    if phone.SHORT_CODE.match(src):
        if req.endpoint == "long_code":
            raise invalid_from(f"{src} is a short code; send it with /messages/short_code.")
        sc = await uow.memo(
            ("short_code", org.id, src), lambda: repo.owned_short_code(uow, org.id, src)
        )
        if sc is None:
            raise invalid_from(f"{src} is not a short code of this account.")
        return Sender(
            src,
            "short_code",
            await _profile_of(uow, org, sc["messaging_profile_id"]),
            sc["rate_limit"],
        )
    if not phone.is_e164(src):
        raise invalid_from(f"'{src}' is not a +E.164 number, short code or alphanumeric sender ID.")
    number = await uow.memo(
        ("phone_number", org.id, src), lambda: repo.owned_phone_number(uow, org.id, src)
    )
    if number is None:
        raise invalid_from(f"{src} is not a phone number of this account.")
    if req.endpoint == "short_code":
        raise invalid_from(
            f"{src} is not a short code; send it with /messages or /messages/long_code."
        )
    profile = await _profile_of(uow, org, number["messaging_profile_id"])
    return Sender(src, _kind_of_number(number), profile, number["rate_limit"])


async def _pool_sender(uow: UnitOfWork, org: Organization, req: SendRequest) -> Sender:
    profile = await repo.profile(uow, org.id, req.messaging_profile_id or "")
    if profile is None:
        raise rejection(
            "40321",
            "No usable numbers in the number pool",
            f"Messaging profile {req.messaging_profile_id} does not exist.",
            "/messaging_profile_id",
        )
    validate_to_format(req.to.strip())
    number = await pool.choose_sender(uow, profile, req.to.strip())
    return Sender(number["phone_number"], _kind_of_number(number), profile, number["rate_limit"])


def _check_destination(to: str, profile: RowMapping, pointer: str = "/to") -> str:
    """Validate `to` (40310) and the profile's allowed destinations (40309); returns the country."""
    to = to.strip()
    if phone.SHORT_CODE.match(to):
        country = "US"
    else:
        info = phone.parse(to)
        if info is None:
            raise invalid_to(f"'{to}' is not a valid +E.164 phone number or short code.", pointer)
        country = info.country_code
    allowed = profile["whitelisted_destinations"] or []
    if "*" not in allowed and country not in allowed:
        raise rejection(
            "40309",
            "Invalid destination region",
            f"Destination country {country} is not in the messaging profile's whitelisted_destinations.",
            pointer,
        )
    return country


def validate_to_format(to: str, pointer: str = "/to") -> None:
    if not (phone.SHORT_CODE.match(to) or phone.parse(to)):
        raise invalid_to(f"'{to}' is not a valid +E.164 phone number or short code.", pointer)


def _limiters(
    ctx: AppContext, organization_id: str, kind: str, number: str, rate_override: float | None
) -> list[ratelimit.Limiter]:
    """The throughput limits a message from `number` passes: its sender's and its organization's."""
    limits = ctx.settings.rate_limits
    if not limits.enabled:
        return []
    rate = rate_override or float(getattr(limits, kind))
    return [
        ratelimit.Limiter(f"sender:{kind}:{number}", rate),
        ratelimit.Limiter(f"org:{organization_id}", limits.organization),
    ]


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
    to = req.to.strip()
    validate_to_format(to)
    text = req.text if req.text else None
    media = [u for u in req.media_urls]
    if text is None and not media:
        raise rejection("40316", "No content", "A message needs 'text' or 'media_urls'.", "/text")
    sender = await resolve_sender(uow, org, req)
    profile = sender.profile
    if not profile["enabled"]:
        raise rejection(
            "40312",
            "Messaging profile disabled",
            "The sender's messaging profile is disabled.",
            "/from",
        )
    country = _check_destination(to, profile)
    if not req.bypass_optout and await optouts.is_blocked(uow, profile["id"], to):
        raise rejection(
            optouts.BLOCKED_CODE,
            optouts.BLOCKED_TITLE,
            f"{to} opted out of messages from this messaging profile (it sent STOP).",
            "/to",
            status=409,
        )

    msg_type = "MMS" if media or req.type == "MMS" else "SMS"
    if msg_type == "MMS":
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
            ctx, profile=profile, to=to, text=text, subject=req.subject, media_urls=media
        )
        msg_type, text, media = plan.type, plan.text, plan.media_urls
        req = replace(req, subject=plan.subject)

    message_id = ids.new_uuid()
    # Links are shortened first, so encoding and `parts` describe what the handset receives;
    # `original_text` keeps the text as submitted (links.service explains the rules).
    sent_text = text
    if text is not None:
        sent_text = await links.shorten(uow, ctx.settings, org.id, message_id, profile, to, text)
    smart = bool(profile["smart_encoding"]) and req.encoding != "ucs2"
    try:
        analysis = analyze(sent_text or "", requested=req.encoding, smart=smart)  # type: ignore[arg-type]
    except EncodingError as exc:
        raise rejection("10015", "Text cannot be encoded as GSM-7", str(exc), "/text") from None
    if msg_type == "SMS":
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

    send_at = _parse_send_at(ctx, req.send_at, now) if req.send_at else None
    limiters = _limiters(ctx, org.id, sender.kind, sender.number, sender.rate_limit)
    wall = now.timestamp()
    if send_at is None and limiters:
        slot = await ratelimit.admit(
            uow, limiters, wall, ctx.settings.rate_limits.max_backlog_seconds
        )
        wait = slot.backlog
    else:
        wait = 0.0
    run_at = send_at or (now + timedelta(seconds=wait))
    cost, breakdown = price(
        price_table(ctx),
        sender_kind=sender.kind,
        country=country,
        message_type=msg_type,
        parts=analysis.parts or 1,
    )
    info = phone.parse(to)
    row = {
        "id": message_id,
        "organization_id": org.id,
        "direction": "outbound",
        "type": msg_type,
        "messaging_profile_id": profile["id"],
        "sender_kind": sender.kind,
        "from_number": sender.number,
        "from_carrier": "SIGNALPOST",
        "from_line_type": "" if sender.kind in ("short_code", "alphanumeric") else "VoIP",
        "to_number": to,
        "to_status": "scheduled" if send_at else "queued",
        "to_carrier": (info.carrier if info else "") or "",
        "to_line_type": (info.line_type if info else "") or "",
        "cc": req.cc,
        "text": analysis.text if text is not None else None,
        "original_text": text if analysis.smart_encoding_applied or sent_text != text else None,
        "subject": req.subject,
        "media": [{"url": u, "content_type": None, "sha256": None, "size": None} for u in media],
        "webhook_url": req.webhook_url or None,
        "webhook_failover_url": req.webhook_failover_url or None,
        "use_profile_webhooks": req.use_profile_webhooks,
        "encoding": analysis.encoding,
        "parts": analysis.parts if msg_type == "SMS" else 1,
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
        "received_at": now,
        "send_at": send_at,
        "sent_at": None,
        "completed_at": None,
        "valid_until": (send_at or now) + timedelta(seconds=ctx.settings.message_validity_seconds),
        "wait_seconds": round(wait, 3),
        "updated_at": now,
    }
    return row, run_at


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
            **_zero_cost(row),
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


# --- lifecycle -----------------------------------------------------------------------------------


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
    from signalpost.webhooks import service as webhooks

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


def _zero_cost(row: Message) -> dict[str, Any]:
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
        values.update(_zero_cost(row))
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
    if row["autoresponse_type"] is None:
        error = await optouts.blocked_code(uow, row["messaging_profile_id"], row["to_number"])
        if error:
            await finalize(uow, row, "sending_failed", error, billed=False)
            return None
    wait = 0.0
    kind = row["sender_kind"] or "long_code"
    limiters = _limiters(
        ctx,
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
    from signalpost.messages import inbound, whatsapp

    rows: dict[str, Message]
    if stored is None:
        rows = dict(await repo.get_many_for_update(uow, [row["id"] for row, _ in answers]))
        expected: tuple[str, ...] = ("sending",)
    else:
        rows = dict(stored)
        expected = ("queued", "sending")
    now = utcnow()
    sent: list[tuple[Message, SubmitResult]] = []
    changes: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}  # by the status they replace
    finals: list[Final] = []
    retry: dict[str, float] = {}
    for message, result in answers:
        row = rows.get(message["id"])
        if row is None or row["to_status"] not in expected or result.outcome == "deferred":
            continue  # (deferred: the process holding the carrier's bind records it)
        rows.pop(message["id"])  # one answer per message
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
            sent.append((sent_row, result))
            change: Mapping[str, Any] = {k: sent_row[k] for k in _SENT_COLUMNS}
        elif result.outcome == "throttled":
            retry_at = now + timedelta(seconds=result.retry_after)
            if row["valid_until"] is not None and retry_at > row["valid_until"]:
                finals.append(Final(row, "expired", "40014", billed=False, extra=common))
                continue
            change = {**common, "to_status": "queued", "updated_at": now}
            retry[row["id"]] = result.retry_after
        else:
            finals.append(Final(row, "sending_failed", result.error_code or "40008", False, common))
            continue
        changes.setdefault(row["to_status"], []).append((row["id"], change))
    for status, status_changes in changes.items():
        await repo.update_many(uow, status_changes, only_status=status)
    # Events, their jobs and the receipt jobs go in when the unit of work ends: one statement
    # per table. The receipts due at the same time share one job. The `message.finalized` events
    # the receipts cause join the queue group of these `message.sent` events: their delivery
    # waits for these to be done with (in the usual case; `webhooks.jobs` checks each event too).
    group = f"webhooks:{ids.new_uuid()}"
    await emit_events(uow, [(new, "message.sent") for new, _ in sent], defer=True, group_key=group)
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
    for new, result in sent:
        # On-net arrival or a simulated handset's reply; the simulated WhatsApp read receipt.
        # Both return at once, without a statement, for the messages that need neither.
        await inbound.after_submission(ctx, uow, as_row(new), result)
        await whatsapp.after_sent(uow, as_row(new), result)
    await finalize_many(uow, finals)
    return retry


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


def request_hash(path: str, body: bytes) -> str:
    return hashlib.sha256(path.encode() + b"\0" + body).hexdigest()
