"""Gateway mode: the server sends through an SMPP carrier (the smpp34-based simulator, a
subprocess) and gets receipts and inbound messages back from it, through the official SDK and a
real webhook receiver, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import telnyx
from telnyx import Telnyx

from tests.support.messaging import Sender, events_for, wait_final
from tests.support.receiver import Received, WebhookReceiver
from tests.support.server import RunningServer
from tests.support.smsc import SmscSim, wait_for_records
from tests.support.wait import wait_until

_phones = itertools.count(2000)


def handset() -> str:
    """A handset number whose last four digits are none of the simulator's magic endings."""
    return f"+1415555{next(_phones):04d}"


@pytest.fixture(scope="module")
def sim() -> Iterator[SmscSim]:
    s = SmscSim("--dlr-delay", "0.02")
    yield s
    s.close()


@pytest.fixture(scope="module")
def settings_overrides(sim: SmscSim) -> dict[str, Any]:
    return {
        "default_carrier": "upstream",
        "carriers": [
            {
                "name": "upstream",
                "kind": "smpp",
                "binds": [
                    {
                        "host": "127.0.0.1",
                        "port": sim.port,
                        "system_id": "signalpost",
                        "password": "secret",
                        "window": 10,
                    }
                ],
            }
        ],
        "smpp_lease_seconds": 3,
    }


@pytest.fixture(scope="module", autouse=True)
def bound(server: RunningServer, sim: SmscSim) -> None:
    async def state(ctx: Any) -> bool:
        from signalpost.carriers import smpp_runtime

        return bool(smpp_runtime(ctx).bound_sessions("upstream"))

    wait_until(lambda: server.run(state), timeout=20)


def _received(hooks: list[Received], event_type: str) -> list[dict[str, Any]]:
    return [
        r.json()["data"] for r in hooks if r.json().get("data", {}).get("event_type") == event_type
    ]


def test_send_over_smpp_to_a_delivered_receipt(
    client: Telnyx, sender: Sender, receiver: WebhookReceiver, sim: SmscSim
) -> None:
    to = handset()
    msg = client.messages.send(from_=sender.number, to=to, text="over SMPP €").data
    assert msg is not None and msg.id
    final = wait_final(client, msg.id)
    assert final.to[0].status == "delivered" and final.to[0].carrier == ""
    (submit,) = [s for s in sim.submits() if s["dst"] == to[1:]]
    assert bytes.fromhex(submit["sm"]) == b"over SMPP \x1b\x65" and submit["dc"] == 0
    got = receiver.wait_for(lambda rs: len(events_for(rs, msg.id)) >= 2)
    hooks = [r for r in got if r.path == sender.hook_path]
    assert [e["data"]["event_type"] for e in events_for(hooks, msg.id)] == [
        "message.sent",
        "message.finalized",
    ]
    for r in hooks:
        assert client.webhooks.unwrap(r.body.decode(), headers=r.headers).data is not None


def test_three_part_ucs2_message_is_delivered_when_every_part_is(
    client: Telnyx, sender: Sender, sim: SmscSim
) -> None:
    to = handset()
    text = "Привет, мир! " * 12  # 156 UCS-2 units: three parts
    msg = client.messages.send(from_=sender.number, to=to, text=text).data
    assert msg is not None and msg.id and msg.parts == 3
    final = wait_final(client, msg.id)
    assert final.to[0].status == "delivered"
    submits = [s for s in sim.submits() if s["dst"] == to[1:]]
    assert sorted(bytes.fromhex(s["sm"])[5] for s in submits) == [1, 2, 3]
    assert {s["dc"] for s in submits} == {8} and {s["esm"] for s in submits} == {0x40}
    joined = b"".join(
        bytes.fromhex(s["sm"])[6:] for s in sorted(submits, key=lambda s: s["sm"][10:12])
    )
    assert joined.decode("utf-16-be") == text


@pytest.mark.parametrize(
    ("ending", "status", "code"),
    [("0012", "delivery_failed", "40008"), ("0013", "expired", "40005")],
)
def test_failed_receipts(
    client: Telnyx, sender: Sender, ending: str, status: str, code: str
) -> None:
    msg = client.messages.send(from_=sender.number, to=f"+1415666{ending}", text="fail").data
    assert msg is not None and msg.id
    final = wait_final(client, msg.id)
    assert final.to[0].status == status
    assert final.errors and final.errors[0].code == code


def test_invalid_destination_is_sending_failed(client: Telnyx, sender: Sender) -> None:
    msg = client.messages.send(from_=sender.number, to="+14156660011", text="nope").data
    assert msg is not None and msg.id
    final = wait_final(client, msg.id)
    assert final.to[0].status == "sending_failed"
    assert final.errors and final.errors[0].code == "40012"


def test_inbound_single_and_repeated(
    sender: Sender, receiver: WebhookReceiver, sim: SmscSim
) -> None:
    phone = handset()
    sim.command(
        mo={"src": phone[1:], "dst": sender.number[1:], "text": "hello gateway", "repeat": 2}
    )
    got = receiver.wait_for(
        lambda rs: len(_received(receiver.on(sender.hook_path), "message.received")) >= 1
    )
    wait_for_records(sim, "deliver_resp", 2)
    mine = [
        e
        for e in _received(receiver.on(sender.hook_path), "message.received")
        if e["payload"]["from"]["phone_number"] == phone
    ]
    assert len(mine) == 1 and mine[0]["payload"]["text"] == "hello gateway"
    assert got


@pytest.mark.parametrize("concat", ["udh8", "udh16", "sar"])
def test_concatenated_inbound_is_reassembled(
    sender: Sender, receiver: WebhookReceiver, sim: SmscSim, concat: str
) -> None:
    phone = handset()
    text = f"{concat}: " + "a long inbound message in three parts " * 3
    sim.command(
        mo={"src": phone[1:], "dst": sender.number[1:], "text": text, "parts": 3, "concat": concat}
    )

    def mine() -> list[dict[str, Any]]:
        return [
            e
            for e in _received(receiver.on(sender.hook_path), "message.received")
            if e["payload"]["from"]["phone_number"] == phone
        ]

    (event,) = wait_until(mine)
    assert event["payload"]["text"] == text


def test_stop_over_smpp_blocks_the_sender(
    client: Telnyx, sender: Sender, receiver: WebhookReceiver, sim: SmscSim
) -> None:
    phone = handset()
    sim.command(mo={"src": phone[1:], "dst": sender.number[1:], "text": "STOP"})

    def blocked() -> bool:
        try:
            client.messages.send(from_=sender.number, to=phone, text="after stop")
        except telnyx.ConflictError as exc:
            return exc.body["errors"][0]["code"] == "40300"  # type: ignore[index,no-any-return]
        return False

    assert wait_until(blocked)


def _default_key(server: RunningServer) -> str:
    async def add(ctx: Any) -> str:
        from signalpost.accounts import service as accounts

        async with ctx.db.transaction() as uow:
            return await accounts.add_api_key(uow, server.app.state.bootstrap.organization.id)

    return str(server.run(add))


def test_admin_endpoint_shows_each_bind(
    server: RunningServer, client: Telnyx, sender: Sender, account: Any
) -> None:
    msg = client.messages.send(from_=sender.number, to=handset(), text="counted").data
    assert msg is not None and msg.id
    wait_final(client, msg.id)
    key = _default_key(server)

    def admin() -> httpx.Response:
        return httpx.get(
            f"{server.base_url}/admin/carriers",
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )

    # the holder reports its bind's state with each lease renewal (a third of the lease)
    wait_until(lambda: admin().json()["data"]["binds"][0]["state"] == "bound")
    r = admin()
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["default_carrier"] == "upstream"
    assert [c["name"] for c in data["carriers"]] == ["simulator", "upstream"]
    assert "password" not in r.text
    (bind,) = data["binds"]
    assert bind["bind"] == "upstream/0" and bind["state"] == "bound"
    assert bind["holder"] and bind["window"] == 10 and bind["in_flight"] == 0

    def counted() -> bool:
        again = admin().json()["data"]["binds"][0]
        return again["submitted"] >= 1 and again["last_receipt_at"] is not None

    wait_until(counted)
    forbidden = httpx.get(
        f"{server.base_url}/admin/carriers",
        headers={"Authorization": f"Bearer {account.api_key}"},
        timeout=10,
    )
    assert forbidden.status_code == 403
    assert forbidden.json()["errors"][0]["code"] == "10010"


def test_cli_carriers_list_and_status(server: RunningServer, sim: SmscSim) -> None:
    from typer.testing import CliRunner

    from signalpost.cli import app

    env = {
        "SIGNALPOST_DATABASE_URL": server.settings.database_url,
        "SIGNALPOST_DEFAULT_CARRIER": "upstream",
        "SIGNALPOST_CARRIERS": json.dumps(
            [
                {
                    "name": "upstream",
                    "kind": "smpp",
                    "binds": [{"host": "127.0.0.1", "port": sim.port, "system_id": "signalpost"}],
                }
            ]
        ),
    }
    listed = CliRunner().invoke(app, ["carriers", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "default carrier: upstream" in listed.output
    assert f"upstream/0  signalpost@127.0.0.1:{sim.port}  transceiver  window 10" in listed.output

    def status() -> dict[str, Any] | None:
        done = CliRunner().invoke(app, ["carriers", "status", "--json"], env=env)
        assert done.exit_code == 0, done.output
        (bind,) = json.loads(done.stdout)  # the database line goes to stderr
        return bind if bind["state"] == "bound" else None

    bind = wait_until(status)
    assert bind["bind"] == "upstream/0" and bind["holder"] and bind["window"] == 10
