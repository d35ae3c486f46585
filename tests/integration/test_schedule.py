"""Scheduled messages: fire on time through the durable queue, cancel, and refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import telnyx
from telnyx import Telnyx

from tests.support.messaging import Sender, event_types
from tests.support.receiver import WebhookReceiver
from tests.support.wait import wait_until


def test_scheduled_message_fires_on_time(
    client: Telnyx, sender: Sender, receiver: WebhookReceiver
) -> None:
    at = datetime.now(UTC) + timedelta(seconds=3)
    msg = client.messages.schedule(
        from_=sender.number, to="+13125550300", text="later", send_at=at
    ).data
    assert msg is not None and msg.id and msg.to
    assert msg.to[0].status == "queued"  # the SDK's enum has no "scheduled" (contract §10.9)
    assert client.messages.retrieve(msg.id).data.sent_at is None  # type: ignore[union-attr]
    got = receiver.wait_for(lambda rs: "message.finalized" in event_types(rs, msg.id or ""), 20)
    assert event_types(got, msg.id) == ["message.sent", "message.finalized"]
    final = client.messages.retrieve(msg.id).data
    assert final is not None and final.sent_at is not None
    assert final.sent_at >= at - timedelta(seconds=0.01)
    assert (final.sent_at - at).total_seconds() < 5


def test_send_at_on_messages_endpoint(client: Telnyx, sender: Sender) -> None:
    at = datetime.now(UTC) + timedelta(seconds=2)
    msg = client.messages.send(
        from_=sender.number, to="+13125550301", text="later", send_at=at
    ).data
    assert msg is not None and msg.id

    def sent() -> bool:
        m = client.messages.retrieve(msg.id or "").data
        return bool(m and m.to and m.to[0].status == "delivered")

    wait_until(sent, 20)


def test_cancel_scheduled_message(
    client: Telnyx, sender: Sender, receiver: WebhookReceiver
) -> None:
    at = datetime.now(UTC) + timedelta(minutes=3)
    msg = client.messages.schedule(
        from_=sender.number, to="+13125550302", text="never", send_at=at
    ).data
    assert msg is not None and msg.id
    cancelled = client.messages.cancel_scheduled(msg.id)
    assert cancelled.id == msg.id
    assert cancelled.to and cancelled.to[0].status == "cancelled"
    # Cancelling again: no longer scheduled.
    with pytest.raises(telnyx.PermissionDeniedError):
        client.messages.cancel_scheduled(msg.id)
    again = client.messages.retrieve(msg.id).data
    assert again is not None and again.sent_at is None
    assert event_types(receiver.received, msg.id) == []


def test_cancel_too_late_or_not_scheduled(client: Telnyx, sender: Sender) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=40)
    msg = client.messages.schedule(
        from_=sender.number, to="+13125550303", text="soon", send_at=soon
    ).data
    assert msg is not None and msg.id
    with pytest.raises(telnyx.PermissionDeniedError):
        client.messages.cancel_scheduled(msg.id)
    now_msg = client.messages.send(from_=sender.number, to="+13125550303", text="now").data
    assert now_msg is not None and now_msg.id
    with pytest.raises(telnyx.PermissionDeniedError):
        client.messages.cancel_scheduled(now_msg.id)
    with pytest.raises(telnyx.NotFoundError):
        client.messages.cancel_scheduled("00000000-0000-4000-8000-000000000000")


def test_send_at_outside_the_window(client: Telnyx, sender: Sender) -> None:
    for at in (datetime.now(UTC) - timedelta(minutes=5), datetime.now(UTC) + timedelta(days=6)):
        with pytest.raises(telnyx.BadRequestError) as info:
            client.messages.schedule(from_=sender.number, to="+13125550304", text="x", send_at=at)
        body = info.value.body
        assert isinstance(body, dict) and body["errors"][0]["source"]["pointer"] == "/send_at"
