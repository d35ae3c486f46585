"""End to end through a third-party gateway: signalpost binds to Jasmin 0.11.0 (with RabbitMQ and
Redis), which relays to the smpp34-based SMSC simulator; receipts and inbound messages come back
the same way, to a real webhook receiver, checked with the SDK's `webhooks.unwrap`.

Needs the local RabbitMQ and Redis; Jasmin is installed into `.jasmin-venv/` on first use (see
tests/support/jasmin.py). Skipped when they cannot be had, failed under CI."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from telnyx import Telnyx

from tests.support.jasmin import PASSWORD, SYSTEM_ID, Jasmin
from tests.support.messaging import Sender, events_for, wait_final
from tests.support.receiver import Received, WebhookReceiver
from tests.support.server import RunningServer
from tests.support.smsc import SmscSim
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow

_phones = itertools.count(3000)


def handset() -> str:
    """A handset number whose last four digits are none of the simulator's magic endings."""
    return f"+1415555{next(_phones):04d}"


@pytest.fixture(scope="module")
def sim() -> Iterator[SmscSim]:
    s = SmscSim("--dlr-delay", "0.02")
    yield s
    s.close()


@pytest.fixture(scope="module")
def jasmin(sim: SmscSim) -> Iterator[Jasmin]:
    gateway = Jasmin(sim)
    yield gateway
    gateway.close()


@pytest.fixture(scope="module")
def settings_overrides(jasmin: Jasmin) -> dict[str, Any]:
    return {
        "default_carrier": "jasmin",
        "carriers": [
            {
                "name": "jasmin",
                "kind": "smpp",
                "binds": [
                    {
                        "host": "127.0.0.1",
                        "port": jasmin.smpp_port,
                        "system_id": SYSTEM_ID,
                        "password": PASSWORD,
                        "window": 10,
                    }
                ],
            }
        ],
        "smpp_lease_seconds": 3,
    }


@pytest.fixture(scope="module", autouse=True)
def bound(server: RunningServer) -> None:
    async def state(ctx: Any) -> bool:
        from signalpost.carriers import smpp_runtime

        return bool(smpp_runtime(ctx).bound_sessions("jasmin"))

    wait_until(lambda: server.run(state), timeout=30)


def _verified(client: Telnyx, hooks: list[Received], event_type: str) -> list[dict[str, Any]]:
    """The `data` of each webhook of that type, every one verified with the SDK's unwrap."""
    out = []
    for r in hooks:
        event = client.webhooks.unwrap(r.body.decode(), headers=r.headers)
        assert event.data is not None
        if event.data.event_type == event_type:
            out.append(r.json()["data"])
    return out


@pytest.mark.parametrize(
    ("text", "parts"),
    [("through Jasmin €", 1), ("a long message relayed by Jasmin in two parts; " * 4, 2)],
)
def test_send_through_jasmin_to_a_delivered_receipt(
    client: Telnyx,
    sender: Sender,
    receiver: WebhookReceiver,
    sim: SmscSim,
    text: str,
    parts: int,
) -> None:
    to = handset()
    msg = client.messages.send(from_=sender.number, to=to, text=text).data
    assert msg is not None and msg.id and msg.parts == parts
    final = wait_final(client, msg.id, timeout=30)
    assert final.to[0].status == "delivered"
    # the simulator saw the parts from Jasmin's connector, not from signalpost
    (jasmin_session,) = {b["session"] for b in sim.records("bind")}
    submits = [s for s in sim.submits() if s["dst"] == to[1:]]
    assert len(submits) == parts and {s["session"] for s in submits} == {jasmin_session}
    if parts == 1:
        assert bytes.fromhex(submits[0]["sm"]) == text.replace("€", "\x1b\x65").encode()
    receiver.wait_for(lambda rs: len(events_for(rs, msg.id)) >= 2, timeout=30)
    hooks = [r for r in receiver.on(sender.hook_path) if events_for([r], msg.id)]
    assert [e["data"]["event_type"] for e in events_for(hooks, msg.id)] == [
        "message.sent",
        "message.finalized",
    ]
    (finalized,) = _verified(client, hooks, "message.finalized")
    assert finalized["payload"]["to"][0]["status"] == "delivered"


def test_inbound_through_jasmin(
    client: Telnyx, sender: Sender, receiver: WebhookReceiver, sim: SmscSim
) -> None:
    phone = handset()
    sim.command(mo={"src": phone[1:], "dst": sender.number[1:], "text": "hello via Jasmin"})

    def mine() -> list[Received]:
        return [
            r
            for r in receiver.on(sender.hook_path)
            if r.json()["data"]["payload"]["from"]["phone_number"] == phone
        ]

    (hook,) = wait_until(mine, timeout=30)
    (event,) = _verified(client, [hook], "message.received")
    assert event["payload"]["text"] == "hello via Jasmin"
    assert event["payload"]["to"][0]["phone_number"] == sender.number
    assert event["payload"]["direction"] == "inbound"


def test_undelivered_receipt_through_jasmin(
    client: Telnyx, sender: Sender, receiver: WebhookReceiver
) -> None:
    # the simulator answers a destination ending in 0012 with stat:UNDELIV; Jasmin rewrites the
    # receipt in its own format before it reaches signalpost
    msg = client.messages.send(from_=sender.number, to="+14156660012", text="not there").data
    assert msg is not None and msg.id
    final = wait_final(client, msg.id, timeout=30)
    assert final.to[0].status == "delivery_failed"
    assert final.errors and final.errors[0].code == "40008"
    receiver.wait_for(lambda rs: len(events_for(rs, msg.id)) >= 2, timeout=30)
    hooks = [r for r in receiver.on(sender.hook_path) if events_for([r], msg.id)]
    (finalized,) = _verified(client, hooks, "message.finalized")
    assert finalized["payload"]["to"][0]["status"] == "delivery_failed"
