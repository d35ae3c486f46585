"""Group MMS through the official SDK: one message per recipient sharing the group id, per-recipient
lifecycle and webhooks, the on-net recipient's inbound copy with `cc`, and the group lookup."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import telnyx
from telnyx import Telnyx

from tests.conftest import Account, unique_number
from tests.support.media_server import PNG_HEAD, MediaServer
from tests.support.messaging import FINAL, Sender, event_types, events_for, make_sender
from tests.support.receiver import Received, WebhookReceiver
from tests.support.wait import wait_until

OFF_NET_US = "+13125550301"
OFF_NET_CA = "+14165550199"


@pytest.fixture(scope="module")
def media() -> Iterator[MediaServer]:
    server = MediaServer().start()
    yield server
    server.stop()


def _error(exc: telnyx.APIStatusError) -> dict[str, Any]:
    body = exc.body
    assert isinstance(body, dict)
    return body["errors"][0]  # type: ignore[no-any-return]


def settled_group(client: Telnyx, group_id: str) -> list[Any]:
    def check() -> list[Any] | None:
        msgs = client.messages.retrieve_group_messages(group_id).data or []
        return msgs if msgs and all(m.to[0].status in FINAL for m in msgs) else None

    return wait_until(check, 15)


def received_on(rs: list[Received], path: str) -> list[dict[str, Any]]:
    return [
        r.json()["data"]["payload"]
        for r in rs
        if r.path == path and r.json()["data"].get("event_type") == "message.received"
    ]


def test_group_mms_to_three_recipients_one_on_net(
    client: Telnyx,
    sender: Sender,
    other_account: Account,
    receiver: WebhookReceiver,
    media: MediaServer,
) -> None:
    theirs = make_sender(other_account.client, receiver, unique_number())
    url, served = media.add(10_000, "image/png", head=PNG_HEAD)
    to = [OFF_NET_US, theirs.number, OFF_NET_CA]
    resp = client.messages.send_group_mms(
        from_=sender.number, to=to, text="Dinner at 8?", subject="Plans", media_urls=[url]
    ).data
    assert resp is not None and resp.id
    group_id = resp.id
    assert resp.type == "MMS"
    assert resp.to is not None and [t.phone_number for t in resp.to] == [OFF_NET_US]
    assert resp.to[0].status == "queued"
    assert resp.cc is not None and [c.phone_number for c in resp.cc] == to[1:]
    assert resp.model_extra is not None and resp.model_extra["group_message_id"] == group_id

    msgs = client.messages.retrieve_group_messages(group_id).data
    assert msgs is not None and len(msgs) == 3
    assert [m.to[0].phone_number for m in msgs] == to
    assert msgs[0].id == group_id and len({m.id for m in msgs}) == 3
    for m, number in zip(msgs, to, strict=True):
        assert m.type == "MMS" and m.text == "Dinner at 8?" and m.subject == "Plans"
        assert [c.phone_number for c in m.cc] == [n for n in to if n != number]
        assert m.from_ is not None and m.from_.phone_number == sender.number

    done = settled_group(client, group_id)
    assert [m.to[0].status for m in done] == ["delivered"] * 3
    assert all(m.media[0].sha256 == served.sha256 for m in done)
    ids = [m.id for m in done]

    got = receiver.wait_for(
        lambda rs: (
            all("message.finalized" in event_types(rs, i) for i in ids)
            and bool(received_on(rs, theirs.hook_path))
        )
    )
    hooks = [r for r in got if r.path == sender.hook_path]
    for message_id, number in zip(ids, to, strict=True):
        assert event_types(hooks, message_id) == ["message.sent", "message.finalized"]
        payload = events_for(hooks, message_id)[-1]["data"]["payload"]
        assert payload["to"][0]["phone_number"] == number
        assert payload["group_message_id"] == group_id

    [inbound] = received_on(got, theirs.hook_path)
    assert inbound["type"] == "MMS"
    assert inbound["from"]["phone_number"] == sender.number
    assert [t["phone_number"] for t in inbound["to"]] == [theirs.number]
    assert [c["phone_number"] for c in inbound["cc"]] == [OFF_NET_US, OFF_NET_CA]
    assert inbound["text"] == "Dinner at 8?" and inbound["subject"] == "Plans"
    assert inbound["media"][0]["hash_sha256"] == served.sha256
    # The receiving organization sees it as an inbound message through the SDK as well.
    mine = other_account.client.messages.retrieve(inbound["id"]).data
    assert mine is not None and mine.direction == "inbound"
    assert [c.phone_number for c in mine.cc or []] == [OFF_NET_US, OFF_NET_CA]


def test_each_recipient_has_its_own_lifecycle(client: Telnyx, sender: Sender) -> None:
    failing = "+14155550110"  # the simulator: delivery_failed 40008
    resp = client.messages.send_group_mms(
        from_=sender.number, to=[OFF_NET_US, failing], text="text only is an MMS too"
    ).data
    assert resp is not None and resp.id and resp.type == "MMS"
    done = settled_group(client, resp.id)
    assert [(m.to[0].phone_number, m.to[0].status) for m in done] == [
        (OFF_NET_US, "delivered"),
        (failing, "delivery_failed"),
    ]
    assert [e.code for e in done[1].errors] == ["40008"]


def test_group_lookup_by_member_id_and_isolation(
    client: Telnyx, sender: Sender, other_account: Account
) -> None:
    resp = client.messages.send_group_mms(
        from_=sender.number, to=[OFF_NET_US, OFF_NET_CA], text="hi"
    ).data
    assert resp is not None and resp.id
    msgs = client.messages.retrieve_group_messages(resp.id).data
    assert msgs is not None and len(msgs) == 2 and msgs[1].id
    by_member = client.messages.retrieve_group_messages(msgs[1].id).data
    assert by_member is not None and [m.id for m in by_member] == [m.id for m in msgs]
    single = client.messages.retrieve(msgs[1].id).data
    assert single is not None and single.to and single.to[0].phone_number == OFF_NET_CA
    with pytest.raises(telnyx.NotFoundError):
        other_account.client.messages.retrieve_group_messages(resp.id)
    with pytest.raises(telnyx.NotFoundError):
        client.messages.retrieve_group_messages(str(uuid.uuid4()))
    plain = client.messages.send(from_=sender.number, to=OFF_NET_US, text="not a group").data
    assert plain is not None and plain.id
    with pytest.raises(telnyx.NotFoundError):
        client.messages.retrieve_group_messages(plain.id)


def test_idempotent_group_send(client: Telnyx, sender: Sender) -> None:
    key = uuid.uuid4().hex
    first = client.messages.send_group_mms(
        from_=sender.number, to=[OFF_NET_US, OFF_NET_CA], text="once", idempotency_key=key
    ).data
    again = client.messages.send_group_mms(
        from_=sender.number, to=[OFF_NET_US, OFF_NET_CA], text="once", idempotency_key=key
    ).data
    assert first is not None and again is not None and first.id == again.id
    msgs = client.messages.retrieve_group_messages(first.id or "").data
    assert msgs is not None and len(msgs) == 2


@pytest.mark.parametrize(
    ("to", "status", "code", "pointer"),
    [
        ([f"+1312555{i:04d}" for i in range(9)], 422, "10015", "/to"),
        ([], 422, "10015", "/to"),
        ([OFF_NET_US, "+447700900123"], 400, "40310", "/to/1"),
        ([OFF_NET_US, OFF_NET_CA, OFF_NET_US], 400, "40310", "/to/2"),
        ([OFF_NET_US, "not-a-number"], 400, "40310", "/to/1"),
    ],
)
def test_recipients_are_checked(
    client: Telnyx, sender: Sender, to: list[str], status: int, code: str, pointer: str
) -> None:
    with pytest.raises(telnyx.APIStatusError) as info:
        client.messages.send_group_mms(from_=sender.number, to=to, text="x")
    assert info.value.status_code == status
    err = _error(info.value)
    assert (err["code"], err["source"]["pointer"]) == (code, pointer)


def test_sender_and_content_are_checked(client: Telnyx, sender: Sender) -> None:
    with pytest.raises(telnyx.BadRequestError) as info:
        client.messages.send_group_mms(
            from_=sender.number, to=[OFF_NET_US, sender.number], text="x"
        )
    assert _error(info.value)["source"]["pointer"] == "/to/1"
    with pytest.raises(telnyx.BadRequestError) as info:
        client.messages.send_group_mms(from_=unique_number(), to=[OFF_NET_US], text="x")
    assert _error(info.value)["code"] == "40305"
    with pytest.raises(telnyx.BadRequestError) as info:
        client.messages.send_group_mms(from_=sender.number, to=[OFF_NET_US])
    assert _error(info.value)["code"] == "40316"
    with pytest.raises(telnyx.BadRequestError) as info:
        client.messages.send_group_mms(
            from_=sender.number, to=[OFF_NET_US], media_urls=["ftp://x/y"]
        )
    assert _error(info.value)["source"]["pointer"] == "/media_urls/0"
