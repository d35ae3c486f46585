"""Gateway mode when the SMPP link misbehaves: throttling answers, the SMSC unbinding and the link
dropping while messages are in flight (every accepted message still ends final: delivered, or, if
its submit_sm was written but unanswered when the link went, `delivery_unconfirmed` and never
written twice), and a message that never gets a receipt ends `delivery_unconfirmed` after its
validity."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from telnyx import Telnyx

from tests.support.messaging import FINAL, Sender, wait_final
from tests.support.server import RunningServer
from tests.support.smsc import SmscSim
from tests.support.tcpproxy import TcpProxy
from tests.support.wait import wait_until

VALIDITY = 10.0
_phones = itertools.count(3000)


@pytest.fixture(scope="module")
def sim() -> Iterator[SmscSim]:
    s = SmscSim("--dlr-delay", "0.02", "--resp-delay", "0.003", "--throttle-first", "3")
    yield s
    s.close()


@pytest.fixture(scope="module")
def proxy(sim: SmscSim) -> Iterator[TcpProxy]:
    p = TcpProxy(sim.port)
    yield p
    p.close()


@pytest.fixture(scope="module")
def settings_overrides(proxy: TcpProxy) -> dict[str, Any]:
    bind = {"host": "127.0.0.1", "port": proxy.port, "system_id": "sp", "response_timeout": 2.0}
    return {
        "default_carrier": "upstream",
        "carriers": [{"name": "upstream", "kind": "smpp", "binds": [bind]}],
        "message_validity_seconds": VALIDITY,
    }


def _bound(server: RunningServer) -> bool:
    async def state(ctx: Any) -> bool:
        from signalpost.carriers import smpp_runtime

        return bool(smpp_runtime(ctx).bound_sessions("upstream"))

    return bool(server.run(state))


def _send_load(client: Telnyx, sender: Sender, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        to = f"+1415888{next(_phones):04d}"
        msg = client.messages.send(from_=sender.number, to=to, text=f"load to {to}").data
        assert msg is not None and msg.id
        ids.append(msg.id)
    return ids


WINDOW = 10  # the bind's default window: submit_sm in flight at once


def _all_final(client: Telnyx, sim: SmscSim, ids: list[str]) -> None:
    """Every message final and delivered, but for those whose submit_sm was in flight (written,
    unanswered) when the link went: the SMSC may or may not have them, so they end
    `delivery_unconfirmed` and are never written again (no duplicate to a handset). How many
    there are depends on timing; at most a window's worth."""

    def messages() -> dict[str, Any]:
        return {i: client.messages.retrieve(i).data.to[0] for i in ids}  # type: ignore[union-attr,index]

    wait_until(lambda: {m.status for m in messages().values()} <= FINAL, 30, 0.2)
    final = messages()
    statuses = Counter(m.status for m in final.values())
    assert set(statuses) <= {"delivered", "delivery_unconfirmed"}, statuses
    assert statuses["delivery_unconfirmed"] <= WINDOW, statuses
    written = Counter(s["dst"] for s in sim.submits() if s["status"] == 0)
    for m in final.values():
        if m.status == "delivery_unconfirmed":
            assert written[m.phone_number.lstrip("+")] <= 1, m.phone_number


def test_throttled_submits_are_sent_again(
    server: RunningServer, client: Telnyx, sender: Sender, sim: SmscSim
) -> None:
    wait_until(lambda: _bound(server), 20)
    msg = client.messages.send(from_=sender.number, to="+14158880001", text="throttle").data
    assert msg is not None and msg.id
    assert wait_final(client, msg.id).to[0].status == "delivered"
    statuses = [s["status"] for s in sim.submits() if s["dst"] == "14158880001"]
    assert statuses[-1] == 0 and statuses.count(0x58) >= 1


def test_smsc_unbind_mid_load(
    server: RunningServer, client: Telnyx, sender: Sender, sim: SmscSim
) -> None:
    wait_until(lambda: _bound(server), 20)
    ids = _send_load(client, sender, 20)
    sim.command(unbind=True)
    ids += _send_load(client, sender, 20)
    _all_final(client, sim, ids)


def test_link_drop_mid_load(
    server: RunningServer, client: Telnyx, sender: Sender, proxy: TcpProxy, sim: SmscSim
) -> None:
    wait_until(lambda: _bound(server), 20)
    ids = _send_load(client, sender, 20)
    proxy.cut()
    ids += _send_load(client, sender, 20)
    _all_final(client, sim, ids)


def test_no_receipt_within_validity_is_delivery_unconfirmed(
    server: RunningServer, client: Telnyx, sender: Sender
) -> None:
    wait_until(lambda: _bound(server), 20)
    msg = client.messages.send(from_=sender.number, to="+14158890014", text="silent").data
    assert msg is not None and msg.id
    final = wait_final(client, msg.id, timeout=VALIDITY + 15)
    assert final.to[0].status == "delivery_unconfirmed"
