"""`POST /v2/webhook_deliveries/{id}/redeliver`: an event whose attempts all failed is sent again
once the receiver works, with the same event id, signed afresh (the SDK's `webhooks.unwrap` checks
it), and recorded as a new attempt — on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
import telnyx
from telnyx import Telnyx

from tests.conftest import Account, unique_number
from tests.support.messaging import Sender, make_sender
from tests.support.receiver import Received, WebhookReceiver
from tests.support.wait import wait_until

ATTEMPTS = 2


@pytest.fixture(scope="module")
def settings_overrides() -> dict[str, Any]:
    return {"webhook_timeout": 0.5, "webhook_retry_base": 0.02, "webhook_attempts": ATTEMPTS}


def redeliver(client: Telnyx, delivery_id: str) -> dict[str, Any]:
    body: dict[str, Any] = client.post(
        f"/webhook_deliveries/{delivery_id}/redeliver", cast_to=object
    )
    return body


def failed_deliveries(client: Telnyx, message_id: str) -> dict[str, Any]:
    """The message's two events by type, once both have failed every attempt."""

    def check() -> dict[str, Any] | None:
        found = {
            d.webhook.event_type: d
            for d in client.webhook_deliveries.list()
            if d.webhook and d.webhook.payload and d.webhook.payload.get("id") == message_id
        }
        done = [d for d in found.values() if d.status == "failed"]
        return found if len(done) == 2 else None

    return wait_until(check, timeout=20)


@pytest.fixture
def failing_sender(account: Account, receiver: WebhookReceiver) -> Sender:
    sender = make_sender(account.client, receiver, unique_number())
    receiver.behave(sender.hook_path, status=500)
    return sender


def test_a_failed_event_is_redelivered_signed_afresh_with_the_same_id(
    account: Account, receiver: WebhookReceiver, failing_sender: Sender
) -> None:
    client = account.client
    msg = client.messages.send(from_=failing_sender.number, to="+13125550001", text="again").data
    assert msg is not None and msg.id
    events = failed_deliveries(client, msg.id)
    sent = events["message.sent"]
    assert len(sent.attempts or []) == ATTEMPTS
    before: list[Received] = receiver.on(failing_sender.hook_path)

    receiver.behave(failing_sender.hook_path, status=200)  # the developer fixed the handler
    answer = redeliver(client, sent.id)["data"]
    assert answer["id"] == sent.id
    assert answer["status"] == "delivered"
    assert len(answer["attempts"]) == ATTEMPTS + 1
    newest = answer["attempts"][0]
    assert newest["status"] == "delivered"
    assert newest["http"]["response"]["status"] == 200
    assert newest["http"]["request"]["url"] == receiver.url(failing_sender.hook_path)

    posts = receiver.on(failing_sender.hook_path)
    assert len(posts) == len(before) + 1
    got = posts[-1]
    event = client.webhooks.unwrap(got.body.decode(), headers=got.headers)
    assert event.data is not None and event.data.id == sent.id
    assert got.json()["meta"]["attempt"] == ATTEMPTS + 1
    first = next(r for r in before if r.json()["data"]["id"] == sent.id)
    assert got.json()["data"] == first.json()["data"]  # the same event, as first sent
    assert got.headers["telnyx-signature-ed25519"] != first.headers["telnyx-signature-ed25519"]
    sent_headers = dict(newest["http"]["request"]["headers"])
    assert sent_headers["telnyx-signature-ed25519"] == got.headers["telnyx-signature-ed25519"]
    assert sent_headers["telnyx-timestamp"] == got.headers["telnyx-timestamp"]

    # The delivery log shows the same through the SDK (strict validation).
    stored = client.webhook_deliveries.retrieve(sent.id).data
    assert stored is not None and stored.status == "delivered"
    assert stored.attempts is not None and len(stored.attempts) == ATTEMPTS + 1
    # The other event is untouched.
    other = client.webhook_deliveries.retrieve(events["message.finalized"].id).data
    assert other is not None and other.status == "failed"


def test_a_failing_redelivery_is_recorded_and_leaves_the_status(
    account: Account, receiver: WebhookReceiver, failing_sender: Sender
) -> None:
    client = account.client
    msg = client.messages.send(from_=failing_sender.number, to="+13125550002", text="still").data
    assert msg is not None and msg.id
    finalized = failed_deliveries(client, msg.id)["message.finalized"]
    answer = redeliver(client, finalized.id)["data"]
    assert answer["status"] == "failed"
    assert [a["status"] for a in answer["attempts"]] == ["failed"] * (ATTEMPTS + 1)
    assert answer["attempts"][0]["http"]["response"]["status"] == 500

    # A delivered event can be sent again too: each redelivery is one more attempt.
    receiver.behave(failing_sender.hook_path, status=204)
    assert redeliver(client, finalized.id)["data"]["status"] == "delivered"
    again = redeliver(client, finalized.id)["data"]
    assert again["status"] == "delivered"
    assert len(again["attempts"]) == ATTEMPTS + 3
    metas = [
        r.json()["meta"]["attempt"]
        for r in receiver.on(failing_sender.hook_path)
        if r.json()["data"]["id"] == finalized.id
    ]
    assert metas == [1, 2, 3, 4, 5]


def test_another_organizations_delivery_is_not_found(
    account: Account, other_account: Account, receiver: WebhookReceiver
) -> None:
    sender = make_sender(account.client, receiver, unique_number())
    msg = account.client.messages.send(from_=sender.number, to="+13125550003", text="x").data
    assert msg is not None and msg.id
    receiver.wait_for(lambda rs: len(receiver.on(sender.hook_path)) >= 2)
    delivery = next(
        d
        for d in account.client.webhook_deliveries.list()
        if d.webhook and d.webhook.payload and d.webhook.payload.get("id") == msg.id
    )
    count = len(receiver.on(sender.hook_path))
    with pytest.raises(telnyx.NotFoundError) as err:
        redeliver(other_account.client, delivery.id)
    assert err.value.response.json()["errors"][0]["code"] == "10005"
    with pytest.raises(telnyx.NotFoundError):
        redeliver(account.client, "00000000-0000-7000-8000-000000000000")
    assert len(receiver.on(sender.hook_path)) == count  # nothing was sent
