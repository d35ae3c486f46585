"""Several binds and both bind modes on the wire, through the official SDK and a real webhook
receiver, on SQLite and PostgreSQL:

- carrier `upstream` (the default) has two transceiver binds to one simulator: the parts of a
  concatenated inbound message that arrive on different binds are joined into one
  `message.received`, and the parts received of one whose other parts never come are delivered
  after `smpp_reassembly_seconds`;
- carrier `split` (destinations +1415777…) has one `transmitter_receiver` bind to another simulator,
  seen through its wire tap: a bind_transmitter and a bind_receiver, submit_sm on the first, receipts
  and inbound messages on the second, and they reach the app as webhooks."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
from telnyx import Telnyx

from tests.support.messaging import Sender, events_for, wait_final
from tests.support.receiver import WebhookReceiver
from tests.support.server import RunningServer
from tests.support.smsc import SmscSim, wait_for_records
from tests.support.wait import wait_until

REASSEMBLY_SECONDS = 3.0
SPLIT_PREFIX = "+1415777"
_phones = itertools.count(4000)


def handset(prefix: str = "+1415556") -> str:
    """A handset number whose last four digits are none of the simulator's magic endings."""
    return f"{prefix}{next(_phones):04d}"


def _bind(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": port,
        "system_id": "signalpost",
        "password": "secret",
        **extra,
    }


# The simulators follow the server (one per backend), so that their records are this server's.
@pytest.fixture(scope="module")
def pair_sim(database_url: str) -> Iterator[SmscSim]:
    s = SmscSim("--dlr-delay", "0.02")
    yield s
    s.close()


@pytest.fixture(scope="module")
def split_sim(database_url: str) -> Iterator[SmscSim]:
    s = SmscSim("--dlr-delay", "0.02", "--tap")
    yield s
    s.close()


@pytest.fixture(scope="module")
def settings_overrides(pair_sim: SmscSim, split_sim: SmscSim) -> dict[str, Any]:
    return {
        "default_carrier": "upstream",
        "carriers": [
            {
                "name": "upstream",
                "kind": "smpp",
                "binds": [_bind(pair_sim.port), _bind(pair_sim.port)],
            },
            {
                "name": "split",
                "kind": "smpp",
                "binds": [_bind(split_sim.port, bind_mode="transmitter_receiver")],
            },
        ],
        "routes": [{"carrier": "split", "prefix": SPLIT_PREFIX}],
        "smpp_lease_seconds": 3,
        "smpp_reassembly_seconds": REASSEMBLY_SECONDS,
    }


@pytest.fixture(scope="module", autouse=True)
def bound(server: RunningServer) -> None:
    """Every session up: two transceivers, and the transmitter and the receiver."""

    async def sessions(ctx: Any) -> list[bool]:
        from signalpost.carriers import smpp_runtime

        runtime = smpp_runtime(ctx)
        return [s.bound for group in runtime.sessions.values() for s in group]

    wait_until(lambda: server.run(sessions) == [True] * 4, timeout=20)


def _received_from(receiver: WebhookReceiver, sender: Sender, phone: str) -> list[dict[str, Any]]:
    events = [r.json()["data"] for r in receiver.on(sender.hook_path)]
    return [
        e
        for e in events
        if e.get("event_type") == "message.received"
        and e["payload"]["from"]["phone_number"] == phone
    ]


def test_parts_on_different_binds_make_one_message(
    sender: Sender, receiver: WebhookReceiver, pair_sim: SmscSim
) -> None:
    sessions = {b["session"] for b in pair_sim.records("bind")}
    assert len(sessions) == 2
    phone = handset()
    text = "parts on two binds: " + "one inbound message over two binds " * 3
    before = len(pair_sim.records("deliver_resp"))
    pair_sim.command(
        mo={"src": phone[1:], "dst": sender.number[1:], "text": text, "parts": 2, "spread": True}
    )
    (event,) = wait_until(lambda: _received_from(receiver, sender, phone))
    assert event["payload"]["text"] == text
    answered = wait_for_records(pair_sim, "deliver_resp", before + 2)[before:]
    # each part went over its own bind, and each was acknowledged
    assert {r["session"] for r in answered} == sessions
    assert [r["status"] for r in answered] == [0, 0]
    assert len(_received_from(receiver, sender, phone)) == 1


def test_parts_received_are_delivered_after_the_reassembly_timeout(
    sender: Sender, receiver: WebhookReceiver, pair_sim: SmscSim
) -> None:
    phone = handset()
    chunks = ["first part, ", "lost middle ", "last part..."]  # the simulator cuts equal parts
    before = len(pair_sim.records("deliver_resp"))
    sent_at = time.monotonic()
    pair_sim.command(
        mo={
            "src": phone[1:],
            "dst": sender.number[1:],
            "text": "".join(chunks),
            "parts": 3,
            "concat": "udh16",
            "skip": [2],
        }
    )
    wait_for_records(pair_sim, "deliver_resp", before + 2)
    (event,) = wait_until(lambda: _received_from(receiver, sender, phone), timeout=20)
    # the parts received, in order, once the message had waited the timeout for its missing part
    assert event["payload"]["text"] == chunks[0] + chunks[2]
    assert time.monotonic() - sent_at >= REASSEMBLY_SECONDS


def _tap(sim: SmscSim) -> dict[int, list[str]]:
    """The commands each connection carried, in order (the ESME's and the SMSC's); a response
    that is not ESME_ROK with its status."""
    out: dict[int, list[str]] = {}
    for r in sim.records("pdu"):
        status = f"/{r['status']:#x}" if r["command"].endswith("_resp") and r["status"] else ""
        out.setdefault(r["conn"], []).append(f"{r['from']}:{r['command']}{status}")
    return out


def test_transmitter_receiver_bind_on_the_wire(
    client: Telnyx, sender: Sender, receiver: WebhookReceiver, split_sim: SmscSim
) -> None:
    to = handset(SPLIT_PREFIX)
    msg = client.messages.send(from_=sender.number, to=to, text="over two sessions").data
    assert msg is not None and msg.id
    assert wait_final(client, msg.id).to[0].status == "delivered"
    phone = handset(SPLIT_PREFIX)
    before = len(split_sim.records("deliver_resp"))
    split_sim.command(mo={"src": phone[1:], "dst": sender.number[1:], "text": "hi over rx"})
    (inbound,) = wait_until(lambda: _received_from(receiver, sender, phone))
    assert inbound["payload"]["text"] == "hi over rx"
    hooks = receiver.wait_for(lambda rs: len(events_for(rs, msg.id)) >= 2)
    assert [e["data"]["event_type"] for e in events_for(hooks, msg.id)] == [
        "message.sent",
        "message.finalized",
    ]

    binds = split_sim.records("bind")
    assert sorted(b["can_receive"] for b in binds) == [False, True]
    (submit,) = [s for s in split_sim.submits() if s["dst"] == to[1:]]
    (transmitter,) = [b["session"] for b in binds if not b["can_receive"]]
    assert submit["session"] == transmitter
    # on the wire: one connection bound as transmitter carries the submits, the other bound as
    # receiver carries the receipt and the inbound message, and no connection is a transceiver
    conns = _tap(split_sim)
    assert sorted(c[0] for c in conns.values()) == ["esme:bind_receiver", "esme:bind_transmitter"]
    (tx,) = [c for c in conns.values() if c[0] == "esme:bind_transmitter"]
    (rx,) = [c for c in conns.values() if c[0] == "esme:bind_receiver"]
    assert "smsc:bind_transmitter_resp" in tx and "smsc:bind_receiver_resp" in rx
    assert "esme:submit_sm" in tx and "smsc:deliver_sm" not in tx
    assert "esme:submit_sm" not in rx
    assert rx.count("smsc:deliver_sm") >= 2 and rx.count("esme:deliver_sm_resp") >= 2
    answered = wait_for_records(split_sim, "deliver_resp", before + 1)
    assert {r["session"] for r in answered} != {transmitter}
    assert {r["esm"] for r in answered} == {0x04, 0}  # a receipt and an inbound message
