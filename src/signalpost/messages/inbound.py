"""Receiving messages: store them, tell the receiving number's app, and answer keywords.

Inbound messages come from three places:
- a simulated handset, injected with `POST /simulator/inbound` or `signalpost inbound`;
- on-net traffic: a message from one number on this server to another is, besides the sender's
  outbound message, an inbound message of the organization owning the receiving number;
- the simulator's auto-replying handsets `+1NPA55502XX` (see `handset_reply_text`).

An inbound message is one `messages` row with `direction` inbound, in the organization owning the
receiving number and on that number's messaging profile. It is delivered as a `message.received`
webhook to that profile's webhook URLs. A message to a number that is on no profile, or that the
organization does not own, is stored all the same (without a profile) but causes no webhook.

When the whole message is an opt-out, opt-in or help keyword (`signalpost.optouts.keywords`) and
the receiving number is on a profile: an opt-out blocks the pair (handset, profile), an opt-in
removes that block, and the receiving number answers with an auto-reply. The auto-reply is an
ordinary outbound message (lifecycle, webhooks) that no opt-out blocks, and the inbound message
carries `autoresponse_type` (`STOP`, `START` or `HELP`). An auto-reply is never itself treated as a
keyword, and simulated handsets do not answer auto-replies, so two parties cannot loop.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import RowMapping

from signalpost.accounts import service as accounts
from signalpost.carriers.base import SubmitResult
from signalpost.carriers.simulator import HANDSET, OFF_NET_CARRIER
from signalpost.context import AppContext
from signalpost.kit import ids, phone
from signalpost.kit.clock import utcnow
from signalpost.kit.db import UnitOfWork
from signalpost.kit.errors import ApiError
from signalpost.kit.queue import enqueue
from signalpost.messages import repository as messages_repo
from signalpost.messages.encoding import analyze
from signalpost.messages.schemas import inbound_payload
from signalpost.messages.senders import SendRequest
from signalpost.messages.service import send
from signalpost.messages.whatsapp.wire import forwarded_body
from signalpost.optouts import repository as optouts_repo
from signalpost.optouts import service as optouts
from signalpost.optouts.keywords import KeywordMatch
from signalpost.webhooks import service as webhooks

log = logging.getLogger("signalpost.inbound")

HANDSET_REPLY_JOB = "simulator.handset_reply"
# A simulated handset answers this long after the delivery receipt of the message it got.
HANDSET_REPLY_DELAY = 0.05
# Our own numbers, as the receiving side of an inbound message.
RECEIVING_CARRIER = "SIGNALPOST"

# Simulated handsets `+1NPA55502XX`: what each answers to a message delivered to it (XX → reply;
# None echoes the text back). Other XX read silently.
HANDSET_REPLIES: dict[int, str | None] = {0: None, 1: "STOP", 2: "HELP", 3: "START"}


@dataclass(frozen=True)
class Incoming:
    """A message arriving at one of our addresses."""

    from_: str
    to: str
    text: str | None = None
    media_urls: Sequence[str] = ()
    subject: str | None = None
    from_carrier: str = ""
    from_line_type: str = ""
    media: Sequence[dict[str, Any]] | None = None  # full media items (on-net), else from URLs
    # The message is an auto-reply of another number: it is never taken as a keyword.
    from_autoresponse: bool = False
    # Group MMS: the other recipients; WhatsApp: the type and the forwarded `body`.
    cc: Sequence[dict[str, Any]] = ()
    message_type: str | None = None  # default: MMS with media, else SMS
    body: dict[str, Any] | None = None


async def receive(
    ctx: AppContext, uow: UnitOfWork, msg: Incoming, *, organization_id: str | None = None
) -> RowMapping | None:
    """Store an inbound message, queue its `message.received` webhook and answer a keyword.

    With `organization_id` (an injection by that organization) the message is stored there; it
    reaches the number's profile only when that organization owns `msg.to`. Without it the message
    goes to whoever owns `msg.to`, and to nobody (None) when the address is not on this server.
    """
    owner = await optouts_repo.owner_of(uow, msg.to)
    if organization_id is None:
        if owner is None:
            return None
        organization_id = owner.organization_id
    owned = owner is not None and owner.organization_id == organization_id
    profile_id = owner.messaging_profile_id if owner is not None and owned else None
    profile = await optouts_repo.profile(uow, profile_id) if profile_id else None
    if profile is None:
        profile_id = None

    keyword: KeywordMatch | None = None
    if profile_id and not msg.from_autoresponse and phone.is_e164(msg.from_):
        keyword = await optouts.keyword_for(uow, profile_id, msg.from_, msg.text)

    row = _inbound_row(
        organization_id,
        profile_id,
        msg,
        to_line_type=owner.line_type if owner is not None and owned else "",
        autoresponse_type=keyword.autoresponse_type if keyword else None,
    )
    await messages_repo.insert_messages(uow, [row])
    stored = await messages_repo.get(uow, row["id"])
    assert stored is not None

    if profile is not None:
        await webhooks.emit(
            uow,
            organization_id=organization_id,
            event_type="message.received",
            payload=inbound_payload(stored),
            urls=webhooks.resolve_urls(None, None, True, profile),
            message_id=stored["id"],
        )
    if keyword is not None and profile_id is not None:
        await _apply_keyword(ctx, uow, organization_id, profile_id, msg, keyword)
    return stored


async def _apply_keyword(
    ctx: AppContext,
    uow: UnitOfWork,
    organization_id: str,
    profile_id: str,
    msg: Incoming,
    keyword: KeywordMatch,
) -> None:
    if keyword.op == "stop":
        await optouts.opt_out(
            uow,
            organization_id=organization_id,
            profile_id=profile_id,
            handset=msg.from_,
            number=msg.to,
            keyword=keyword.keyword,
        )
    elif keyword.op == "start":
        await optouts.opt_in(uow, profile_id, msg.from_)
    org = await accounts.find_organization(uow, organization_id)
    if org is None:  # pragma: no cover - the organization owns the number
        return
    reply = SendRequest(
        endpoint="messages",
        to=msg.from_,
        from_=msg.to,
        text=keyword.reply,
        bypass_optout=True,
        autoresponse_type=keyword.autoresponse_type,
    )
    try:
        await send(ctx, uow, org, reply)
    except ApiError as exc:
        # The keyword still takes effect; only the confirmation cannot be sent (e.g. the
        # handset's country is not among the profile's whitelisted destinations).
        log.info("auto-reply from %s to %s not sent: %s", msg.to, msg.from_, exc)


def _media(msg: Incoming) -> list[dict[str, Any]]:
    if msg.media is not None:
        return [dict(m) for m in msg.media]
    return [
        {
            "url": url,
            "content_type": mimetypes.guess_type(url.split("?", 1)[0])[0],
            "hash_sha256": None,
            "size": None,
        }
        for url in msg.media_urls
    ]


def _inbound_row(
    organization_id: str,
    profile_id: str | None,
    msg: Incoming,
    *,
    to_line_type: str,
    autoresponse_type: str | None,
) -> dict[str, Any]:
    now = utcnow()
    media = _media(msg)
    analysis = analyze(msg.text or "", requested="auto", smart=False)
    info = phone.parse(msg.from_)
    return {
        "id": ids.new_uuid(),
        "organization_id": organization_id,
        "direction": "inbound",
        "type": msg.message_type or ("MMS" if media else "SMS"),
        "messaging_profile_id": profile_id,
        "sender_kind": None,
        "from_number": msg.from_,
        "from_carrier": msg.from_carrier or (info.carrier if info else "") or OFF_NET_CARRIER,
        "from_line_type": msg.from_line_type or (info.line_type if info else "") or "Wireless",
        "from_status": "received",
        "to_number": msg.to,
        "to_status": "delivered",
        "to_carrier": RECEIVING_CARRIER,
        "to_line_type": to_line_type,
        "cc": [dict(c) for c in msg.cc],
        "text": msg.text,
        "original_text": None,
        "subject": msg.subject,
        "media": media,
        "webhook_url": None,
        "webhook_failover_url": None,
        "use_profile_webhooks": True,
        "encoding": "utf-8" if msg.message_type == "WHATSAPP" else analysis.encoding,
        "parts": max(analysis.parts, 1),
        "num_chars": analysis.num_chars,
        "smart_encoding_applied": False,
        "tags": [],
        "cost": None,
        "cost_breakdown": None,
        "errors": [],
        "body": msg.body,
        "request": None,
        "group_id": None,
        "autoresponse_type": autoresponse_type,
        "carrier_message_id": None,
        "carrier_attempts": 0,
        "received_at": now,
        "send_at": None,
        "sent_at": None,
        "completed_at": None,
        "valid_until": None,
        "wait_seconds": None,
        "updated_at": now,
    }


# --- the send path's side effects ---------------------------------------------------------------


async def after_submission(
    ctx: AppContext, uow: UnitOfWork, sent: RowMapping, result: SubmitResult
) -> None:
    """What follows a message the carrier accepted: on-net arrival, or a simulated handset's reply."""
    if result.on_net:
        await receive(
            ctx,
            uow,
            Incoming(
                from_=sent["from_number"],
                to=sent["to_number"],
                text=sent["text"],
                subject=sent["subject"],
                media=list(sent["media"] or []),
                from_carrier=sent["from_carrier"],
                from_line_type=sent["from_line_type"],
                from_autoresponse=sent["autoresponse_type"] is not None,
                cc=list(sent["cc"] or []),
                message_type=sent["type"],
                body=forwarded_body(sent),
            ),
        )
        return
    receipt = result.receipt
    if (
        HANDSET.match(sent["to_number"])
        and sent["autoresponse_type"] is None
        and receipt is not None
        and receipt.status == "delivered"
        and handset_reply_text(sent["to_number"], sent["text"]) is not None
    ):
        deadline = utcnow() + timedelta(seconds=receipt.after + 120)
        await enqueue(
            uow,
            HANDSET_REPLY_JOB,
            {"message_id": sent["id"], "deadline": deadline.isoformat()},
            delay=receipt.after + HANDSET_REPLY_DELAY,
        )


def handset_reply_text(handset: str, text: str | None) -> str | None:
    """What the simulated handset `+1NPA55502XX` answers to `text`, or None if it stays silent."""
    m = HANDSET.match(handset)
    if m is None:
        return None
    xx = int(m.group(1))
    if xx not in HANDSET_REPLIES:
        return None
    reply = HANDSET_REPLIES[xx]
    return reply if reply is not None else (text or None)


async def handset_reply(ctx: AppContext, uow: UnitOfWork, message_id: str) -> bool | None:
    """The handset that got `message_id` answers it. None: not delivered yet, ask again later."""
    row = await messages_repo.get(uow, message_id)
    if row is None:
        return False
    if row["to_status"] == "sent":
        return None
    if row["to_status"] != "delivered":
        return False
    text = handset_reply_text(row["to_number"], row["text"])
    if text is None:
        return False
    info = phone.parse(row["to_number"])
    await receive(
        ctx,
        uow,
        Incoming(
            from_=row["to_number"],
            to=row["from_number"],
            text=text,
            from_carrier=row["to_carrier"] or (info.carrier if info else "") or OFF_NET_CARRIER,
            from_line_type=row["to_line_type"] or "Wireless",
        ),
    )
    return True
