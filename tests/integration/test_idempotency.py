"""`Idempotency-Key` on sends: a retried request creates nothing new; a different body is refused."""

from __future__ import annotations

import uuid

import httpx
import pytest
import telnyx
from telnyx import Telnyx

from tests.conftest import Account, unique_number
from tests.support.messaging import make_sender
from tests.support.receiver import WebhookReceiver
from tests.support.server import RunningServer


def test_same_key_same_body_returns_the_first_message(
    client: Telnyx, receiver: WebhookReceiver
) -> None:
    sender = make_sender(client, receiver, unique_number())
    key = uuid.uuid4().hex
    first = client.messages.send(
        from_=sender.number, to="+13125550200", text="once", idempotency_key=key
    ).data
    again = client.messages.send(
        from_=sender.number, to="+13125550200", text="once", idempotency_key=key
    ).data
    assert first is not None and again is not None
    assert first.id == again.id
    other = client.messages.send(from_=sender.number, to="+13125550200", text="once").data
    assert other is not None and other.id != first.id


def test_same_key_different_body_is_422(client: Telnyx, receiver: WebhookReceiver) -> None:
    sender = make_sender(client, receiver, unique_number())
    key = uuid.uuid4().hex
    client.messages.send(from_=sender.number, to="+13125550201", text="one", idempotency_key=key)
    with pytest.raises(telnyx.UnprocessableEntityError):
        client.messages.send(
            from_=sender.number, to="+13125550201", text="two", idempotency_key=key
        )


def test_keys_are_per_organization(
    client: Telnyx, other_account: Account, receiver: WebhookReceiver
) -> None:
    mine = make_sender(client, receiver, unique_number())
    theirs = make_sender(other_account.client, receiver, unique_number())
    key = uuid.uuid4().hex
    a = client.messages.send(
        from_=mine.number, to="+13125550202", text="k", idempotency_key=key
    ).data
    b = other_account.client.messages.send(
        from_=theirs.number, to="+13125550202", text="k", idempotency_key=key
    ).data
    assert a is not None and b is not None and a.id != b.id


def test_concurrent_retries_create_one_message(
    server: RunningServer, account: Account, receiver: WebhookReceiver
) -> None:
    sender = make_sender(account.client, receiver, unique_number())
    key = uuid.uuid4().hex
    headers = {"Authorization": f"Bearer {account.api_key}", "Idempotency-Key": key}
    body = {"from": sender.number, "to": "+13125550203", "text": "race"}
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(
                lambda _: httpx.post(f"{server.base_url}/v2/messages", json=body, headers=headers),
                range(8),
            )
        )
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    assert len({r.json()["data"]["id"] for r in results}) == 1
