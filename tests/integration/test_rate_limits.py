"""Per-sender throughput: messages leave at the configured rate, wait, expire, or are refused."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest
import telnyx
from sqlalchemy import update
from telnyx import Telnyx

from signalpost.context import AppContext
from signalpost.models import phone_numbers
from tests.conftest import unique_number
from tests.support.messaging import make_sender
from tests.support.receiver import WebhookReceiver
from tests.support.server import RunningServer
from tests.support.wait import wait_until

RATE = 5.0


@pytest.fixture(scope="module")
def settings_overrides() -> dict[str, Any]:
    return {
        "rate_limits": {
            "enabled": True,
            "long_code": RATE,
            "organization": 1000,
            "max_backlog_seconds": 5,
        },
        "message_validity_seconds": 2.5,
    }


def _set_rate(server: RunningServer, number: str, rate: float) -> None:
    async def go(ctx: AppContext) -> None:
        async with ctx.db.transaction() as uow:
            await uow.conn.execute(
                update(phone_numbers)
                .where(phone_numbers.c.phone_number == number)
                .values(rate_limit=rate)
            )

    server.run(go)


def test_messages_leave_at_the_sender_rate(client: Telnyx, receiver: WebhookReceiver) -> None:
    sender = make_sender(client, receiver, unique_number())
    sent = [
        client.messages.send(from_=sender.number, to="+13125550100", text=f"n{i}").data
        for i in range(8)
    ]
    waits = [m.wait_seconds or 0.0 for m in sent if m is not None]
    assert waits[0] == pytest.approx(0, abs=0.05)
    assert any(w > 0 for w in waits), waits
    # Each message's slot (acceptance + wait) is at least one interval after the previous one.
    slots = [
        m.received_at.timestamp() + (m.wait_seconds or 0.0) for m in sent if m and m.received_at
    ]
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert all(g >= 1 / RATE - 0.01 for g in gaps), gaps

    def all_sent() -> list[Any] | None:
        got = [client.messages.retrieve(m.id or "").data for m in sent if m is not None]
        return got if all(g is not None and g.sent_at for g in got) else None

    done = wait_until(all_sent, 15)
    # No message leaves before its slot, so the last leaves at least 7 intervals after the first
    # was accepted.
    for m, slot in zip(done, slots, strict=True):
        assert m.sent_at.timestamp() >= slot - 0.05, (m.sent_at, slot)
    first_accepted = min(m.received_at for m in done)
    span = (max(m.sent_at for m in done) - first_accepted).total_seconds()
    assert span >= 7 / RATE - 0.05, span


def test_queue_deadline_expires_and_backlog_is_refused(
    client: Telnyx, receiver: WebhookReceiver, server: RunningServer
) -> None:
    sender = make_sender(client, receiver, unique_number())
    _set_rate(server, sender.number, 0.5)  # one message every 2 s
    first = client.messages.send(from_=sender.number, to="+13125550101", text="a").data
    second = client.messages.send(from_=sender.number, to="+13125550101", text="b").data
    third = client.messages.send(from_=sender.number, to="+13125550101", text="c").data
    assert first and second and third
    assert third.wait_seconds == pytest.approx(4.0, abs=0.3)
    with pytest.raises(telnyx.RateLimitError) as info:
        client.messages.send(from_=sender.number, to="+13125550101", text="d")
    body = info.value.body
    assert isinstance(body, dict) and body["errors"][0]["code"] == "40318"

    def final(mid: str) -> Any:
        msg = client.messages.retrieve(mid).data
        return (
            msg
            if msg and msg.to and msg.to[0].status not in ("queued", "sending", "sent")
            else None
        )

    expired = wait_until(lambda: final(third.id or ""), 15)
    assert expired.to[0].status == "expired"
    assert [e.code for e in expired.errors or []] == ["40014"]
    assert wait_until(lambda: final(first.id or ""), 15).to[0].status == "delivered"


def test_opt_out_while_queued_stops_the_message(
    client: Telnyx, receiver: WebhookReceiver, server: RunningServer
) -> None:
    sender = make_sender(client, receiver, unique_number())
    _set_rate(server, sender.number, 0.5)  # the second message waits 2 s in the queue
    handset = "+13125550150"
    client.messages.send(from_=sender.number, to=handset, text="first")
    waiting = client.messages.send(from_=sender.number, to=handset, text="second").data
    assert waiting is not None and waiting.id and (waiting.wait_seconds or 0) > 1
    r = httpx.post(
        f"{server.base_url}/simulator/inbound",
        json={"from": handset, "to": sender.number, "text": "STOP"},
        headers={"Authorization": f"Bearer {client.api_key}"},
    )
    assert r.status_code == 200, r.text

    def final() -> Any:
        msg = client.messages.retrieve(waiting.id or "").data
        return (
            msg
            if msg and msg.to and msg.to[0].status not in ("queued", "sending", "sent")
            else None
        )

    stopped = wait_until(final, 15)
    assert stopped.to[0].status == "sending_failed"
    assert [e.code for e in stopped.errors or []] == ["40300"]


def test_scheduled_messages_keep_the_number_rate(
    client: Telnyx, receiver: WebhookReceiver, server: RunningServer
) -> None:
    from datetime import UTC, datetime, timedelta

    sender = make_sender(client, receiver, unique_number())
    _set_rate(server, sender.number, 0.5)  # its own rate: one message every 2 s
    at = datetime.now(UTC) + timedelta(seconds=1)
    msgs = [
        client.messages.schedule(
            from_=sender.number, to="+13125550160", text=f"s{i}", send_at=at
        ).data
        for i in range(2)
    ]

    def sent() -> list[Any] | None:
        got = [client.messages.retrieve(m.id or "").data for m in msgs if m is not None]
        return got if all(g is not None and g.sent_at for g in got) else None

    first, second = sorted(wait_until(sent, 20), key=lambda m: m.sent_at)
    assert (second.sent_at - first.sent_at).total_seconds() >= 2 - 0.1
