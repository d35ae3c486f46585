"""WhatsApp messages on the wire: the stored `body`, the send response, the forwarded inbound `body`."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from signalpost.kit import ids
from signalpost.kit.clock import iso
from signalpost.messages.whatsapp.models import (
    ENCODING,
    MEDIA_TYPES,
    WhatsappMedia,
    WhatsappMessage,
)

# --- wire forms ----------------------------------------------------------------------------------


def stored_body(msg: WhatsappMessage, kind: str) -> dict[str, Any]:
    """The message's `body`: the content as sent (validated), with its type made explicit."""
    body = msg.model_dump(exclude_none=True)
    body["type"] = kind
    return body


def response_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """`body` for the send response, within the SDK's narrower response model (module doc)."""
    out = {k: v for k, v in body.items()}
    if isinstance(out.get("contacts"), list):
        contacts = []
        for c in out["contacts"]:
            c = dict(c)
            if isinstance(c.get("name"), Mapping):
                c["name"] = c["name"].get("formatted_name")
            contacts.append(c)
        out["contacts"] = contacts
    inter = out.get("interactive")
    if isinstance(inter, Mapping) and inter.get("type") == "flow":
        out["interactive"] = {k: v for k, v in inter.items() if k != "type"}
    tpl = out.get("template")
    if isinstance(tpl, Mapping) and isinstance(tpl.get("components"), list):
        comps = []
        for comp in tpl["components"]:
            comp = {k: v for k, v in comp.items() if not (k == "sub_type" and v == "flow")}
            if isinstance(comp.get("parameters"), list):
                comp["parameters"] = [
                    {k: v for k, v in p.items() if not (k == "type" and v == "action")}
                    for p in comp["parameters"]
                ]
            comps.append(comp)
        out["template"] = {**tpl, "components": comps}
    return out


def send_response(row: Mapping[str, Any]) -> dict[str, Any]:
    """The `data` of the send response (`MessageWhatsappResponse`, contract §5.11)."""
    return {
        "id": row["id"],
        "record_type": "message",
        "direction": "outbound",
        "type": "WHATSAPP",
        "encoding": ENCODING,
        "from": {
            "phone_number": row["from_number"],
            "carrier": row["from_carrier"],
            "line_type": row["from_line_type"],
            "status": "received",
        },
        "to": [
            {
                "phone_number": row["to_number"],
                "status": "queued",
                "carrier": row["to_carrier"],
                "line_type": row["to_line_type"],
            }
        ],
        "body": response_body(row["body"] or {}),
        "messaging_profile_id": row["messaging_profile_id"],
        "organization_id": row["organization_id"],
        "received_at": iso(row["received_at"]),
        "wait_seconds": row["wait_seconds"],
    }


def text_of(msg: WhatsappMessage, kind: str) -> str | None:
    """The human-readable text of a message, for `text`/`num_chars` and the inbox."""
    if kind == "text" and msg.text is not None:
        return msg.text.body
    if kind in MEDIA_TYPES:
        media: WhatsappMedia = getattr(msg, kind)
        return media.caption
    if kind == "interactive" and msg.interactive is not None and msg.interactive.body is not None:
        return msg.interactive.body.text
    if kind == "reaction" and msg.reaction is not None:
        return msg.reaction.emoji
    return None


def inbound_body(msg: WhatsappMessage, kind: str, sender: str) -> dict[str, Any]:
    """The `body` of an inbound WhatsApp message as Telnyx forwards it (contract §4.5)."""
    body: dict[str, Any] = {
        "id": ids.new_uuid(),
        "foreign_id": f"wamid.{ids.base62(32)}",
        "from": sender,
        "timestamp": str(int(time.time())),
        "type": kind,
    }
    if kind == "text" and msg.text is not None:
        body["text"] = {"body": msg.text.body}
    elif kind == "location" and msg.location is not None:
        loc = msg.location.model_dump(exclude_none=True)
        loc["latitude"] = float(msg.location.latitude or 0)
        loc["longitude"] = float(msg.location.longitude or 0)
        body["location"] = loc
    else:
        body[kind] = msg.model_dump(exclude_none=True).get(kind)
    return body


def forwarded_body(sent: Mapping[Any, Any]) -> dict[str, Any] | None:
    """The inbound `body` an on-net recipient gets for a WhatsApp message (None for SMS/MMS)."""
    if sent["type"] != "WHATSAPP" or not sent["body"]:
        return None
    msg = WhatsappMessage.model_validate(sent["body"])
    return inbound_body(msg, str(sent["body"].get("type") or "text"), sent["from_number"])
