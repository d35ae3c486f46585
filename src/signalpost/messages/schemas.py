"""Wire models for sending messages, and the renderers of the message objects (contract §4.1, §4.5)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from signalpost.kit.clock import iso


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _Common(_Request):
    to: str
    text: str | None = None
    subject: str | None = None
    media_urls: list[str] | None = None
    type: Literal["SMS", "MMS"] | None = None
    encoding: Literal["auto", "gsm7", "ucs2"] = "auto"
    auto_detect: bool = False
    use_profile_webhooks: bool = True
    webhook_url: str | None = None
    webhook_failover_url: str | None = None


class MessageSend(_Common):
    """`POST /messages` (and `/messages/schedule`, which has no `encoding`)."""

    from_: str | None = Field(default=None, alias="from")
    messaging_profile_id: str | None = None
    send_at: str | None = None


class LongCodeSend(_Common):
    from_: str = Field(alias="from")


class ShortCodeSend(_Common):
    from_: str = Field(alias="from")


class NumberPoolSend(_Common):
    messaging_profile_id: str


class AlphanumericSend(_Request):
    from_: str = Field(alias="from")
    messaging_profile_id: str
    text: str
    to: str
    use_profile_webhooks: bool = True
    webhook_url: str | None = None
    webhook_failover_url: str | None = None


class GroupMmsSend(_Request):
    from_: str = Field(alias="from")
    to: list[str]
    text: str | None = None
    subject: str | None = None
    media_urls: list[str] | None = None
    use_profile_webhooks: bool = True
    webhook_url: str | None = None
    webhook_failover_url: str | None = None


# Statuses a send response or GET may show for `to[]`: the SDK's outbound enum has no
# `scheduled`/`cancelled` (contract §10.9), so a scheduled message is shown as `queued` there.
_OUTBOUND_TO_STATUS = {"scheduled": "queued", "cancelled": "sending_failed"}


def _party(number: str, carrier: str, line_type: str, status: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"phone_number": number, "carrier": carrier, "line_type": line_type}
    if status is not None:
        out["status"] = status
    return out


def outbound_payload(
    row: Mapping[Any, Any], *, for_webhook: bool = False, cancel_view: bool = False
) -> dict[str, Any]:
    """The outbound message object. Webhooks carry the text as the client sent it."""
    status = row["to_status"]
    if not cancel_view:
        status = _OUTBOUND_TO_STATUS.get(status, status)
    text = row["original_text"] if for_webhook and row["original_text"] is not None else row["text"]
    out: dict[str, Any] = {
        "record_type": "message",
        "direction": "outbound",
        "id": row["id"],
        "type": row["type"],
        "messaging_profile_id": row["messaging_profile_id"],
        "organization_id": row["organization_id"],
        "from": _party(row["from_number"], row["from_carrier"], row["from_line_type"]),
        "to": [_party(row["to_number"], row["to_carrier"], row["to_line_type"], status)],
        "cc": list(row["cc"] or []),
        "text": text or "",  # the spec's `text` is a string, never null (an MMS may have none)
        "subject": row["subject"],
        "media": [
            {
                "url": m.get("url"),
                "content_type": m.get("content_type"),
                "sha256": m.get("sha256"),
                "size": m.get("size"),
            }
            for m in (row["media"] or [])
        ],
        "webhook_url": row["webhook_url"],
        "webhook_failover_url": row["webhook_failover_url"],
        "encoding": row["encoding"],
        "parts": row["parts"],
        "num_chars": row["num_chars"],
        "smart_encoding_applied": bool(row["smart_encoding_applied"]),
        "tags": list(row["tags"] or []),
        "cost": row["cost"],
        "cost_breakdown": row["cost_breakdown"],
        "tcr_campaign_id": None,
        "tcr_campaign_billable": False,
        "tcr_campaign_registered": None,
        "received_at": iso(row["received_at"]),
        "valid_until": iso(row["valid_until"]),
        "errors": list(row["errors"] or []),
    }
    # The spec's `sent_at` and `completed_at` are date-times, never null: absent until known.
    if row["sent_at"] is not None:
        out["sent_at"] = iso(row["sent_at"])
    if row["completed_at"] is not None:
        out["completed_at"] = iso(row["completed_at"])
    if not cancel_view:
        out["wait_seconds"] = row["wait_seconds"]
        if row["body"] is not None:
            out["body"] = outbound_body(row["type"], row["body"])
    if row["send_at"] is not None:
        out["send_at"] = iso(row["send_at"])
    if row["group_id"] is not None:
        out["group_message_id"] = row["group_id"]
    return out


def outbound_body(message_type: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """`body` of an outbound message: the SDK types `body.text` as a string (the RCS text), so a
    WhatsApp text object `{"body": ..., "preview_url": ...}` is given as its `body` string."""
    out = dict(body)
    if message_type == "WHATSAPP" and isinstance(out.get("text"), Mapping):
        out["text"] = out["text"].get("body")
    return out


def inbound_payload(row: Mapping[Any, Any]) -> dict[str, Any]:
    """The inbound message object (contract §4.5)."""
    out: dict[str, Any] = {
        "record_type": "message",
        "direction": "inbound",
        "id": row["id"],
        "type": row["type"],
        "messaging_profile_id": row["messaging_profile_id"],
        "organization_id": row["organization_id"],
        "from": _party(
            row["from_number"], row["from_carrier"], row["from_line_type"], row["from_status"]
        ),
        # WhatsApp webhooks name the receiving number as one string (contract §4.5).
        "to": row["to_number"]
        if row["type"] == "WHATSAPP"
        else [_party(row["to_number"], row["to_carrier"], row["to_line_type"], row["to_status"])],
        "cc": list(row["cc"] or []),
        "text": row["text"] or "",
        "subject": row["subject"],
        "media": [
            {
                "url": m.get("url"),
                "content_type": m.get("content_type"),
                "hash_sha256": m.get("sha256") or m.get("hash_sha256"),
                "size": m.get("size"),
            }
            for m in (row["media"] or [])
        ],
        "webhook_url": row["webhook_url"],
        "webhook_failover_url": row["webhook_failover_url"],
        "encoding": row["encoding"],
        "parts": row["parts"],
        "num_chars": row["num_chars"],
        "tags": list(row["tags"] or []),
        "cost": row["cost"],
        "cost_breakdown": row["cost_breakdown"],
        "tcr_campaign_id": None,
        "tcr_campaign_billable": False,
        "tcr_campaign_registered": None,
        "received_at": iso(row["received_at"]),
        # No `sent_at` / `completed_at` on inbound messages (the spec allows them no null).
        "valid_until": None,
        "errors": list(row["errors"] or []),
        "autoresponse_type": row["autoresponse_type"],
    }
    if row["body"] is not None:
        out["body"] = row["body"]
    if row["group_id"] is not None:
        out["group_message_id"] = row["group_id"]
    return out


def message_payload(row: Mapping[Any, Any]) -> dict[str, Any]:
    return outbound_payload(row) if row["direction"] == "outbound" else inbound_payload(row)
