"""Setting up senders through the public API, and reading the webhooks they cause."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from telnyx import Telnyx

from tests.support.receiver import Received, WebhookReceiver
from tests.support.wait import wait_until

FINAL = {"delivered", "delivery_failed", "delivery_unconfirmed", "sending_failed", "expired"}


@dataclass
class Sender:
    profile_id: str
    number: str
    hook_path: str


def make_sender(
    client: Telnyx,
    receiver: WebhookReceiver,
    number: str,
    *,
    destinations: list[str] | None = None,
    **profile_fields: Any,
) -> Sender:
    """A messaging profile whose webhooks go to a fresh path on `receiver`, and a number on it."""
    path = f"/hooks/{uuid.uuid4().hex[:10]}"
    profile = client.messaging_profiles.create(
        name=f"profile {path}",
        whitelisted_destinations=destinations or ["US", "CA", "GB"],
        webhook_url=receiver.url(path),
        **profile_fields,
    ).data
    assert profile is not None and profile.id
    client.number_orders.create(
        phone_numbers=[{"phone_number": number}], messaging_profile_id=profile.id
    )
    return Sender(profile.id, number, path)


def events_for(received: list[Received], message_id: str) -> list[dict[str, Any]]:
    out = []
    for r in received:
        body = r.json()
        data = body.get("data", {})
        if data.get("record_type") == "event" and data.get("payload", {}).get("id") == message_id:
            out.append(body)
    return out


def event_types(received: list[Received], message_id: str) -> list[str]:
    return [b["data"]["event_type"] for b in events_for(received, message_id)]


def wait_final(client: Telnyx, message_id: str, timeout: float = 15.0) -> Any:
    """The message once its recipient reached a final status (fails after `timeout`)."""

    def check() -> Any:
        msg = client.messages.retrieve(message_id).data
        assert msg is not None and msg.to
        return msg if msg.to[0].status in FINAL else None

    return wait_until(check, timeout)
