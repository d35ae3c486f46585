"""A slow webhook receiver holds up nothing but its own deliveries: while one organization's
receiver takes seconds to answer each POST, another organization's messages still reach `sent`
promptly (webhook deliveries run in a lane of their own, capped per receiving host)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from signalpost.context import AppContext
from signalpost.models import messages
from tests.conftest import Account, unique_number
from tests.support.messaging import make_sender
from tests.support.receiver import WebhookReceiver
from tests.support.server import RunningServer
from tests.support.wait import wait_until

SLOW_SECONDS = 3.0
LOAD_MESSAGES = 500
LOAD_RATE = 100.0  # messages/s
PROBES = 20


@pytest.fixture(scope="module")
def settings_overrides() -> dict[str, Any]:
    # The sandbox's shape: one in-process worker task (per lane); the receiver answers within the
    # timeout, slowly. Few places per worker task: the backlog a drill at 200 messages/s builds
    # against 800 places, at a rate a test can afford.
    return {
        "workers": 1,
        "worker_concurrency": 8,
        "webhook_timeout": 10.0,
        "worker_poll_interval": 0.2,
    }


async def _load(base: str, key: str, number: str) -> None:
    """`LOAD_MESSAGES` sends at about `LOAD_RATE` per second."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=f"{base}/v2", headers=headers, timeout=30) as http:

        async def send(i: int) -> None:
            await asyncio.sleep(i / LOAD_RATE)
            r = await http.post(
                "/messages", json={"from": number, "to": f"+1415777{i:04d}", "text": f"l{i}"}
            )
            r.raise_for_status()

        await asyncio.gather(*(send(i) for i in range(LOAD_MESSAGES)))


def _unsent(server: RunningServer, number: str) -> int:
    async def go(ctx: AppContext) -> int:
        async with ctx.db.transaction() as uow:
            query = (
                select(func.count())
                .select_from(messages)
                .where(messages.c.from_number == number, messages.c.sent_at.is_(None))
            )
            return int((await uow.conn.execute(query)).scalar_one())

    return server.run(go)


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_a_slow_receiver_does_not_hold_up_another_organizations_sends(
    server: RunningServer, account: Account, other_account: Account, receiver: WebhookReceiver
) -> None:
    slow = make_sender(account.client, receiver, unique_number())
    receiver.behave(slow.hook_path, delay=SLOW_SECONDS)
    quiet = other_account.client.messaging_profiles.create(
        name="no webhooks", whitelisted_destinations=["US"]
    ).data
    assert quiet is not None and quiet.id
    quiet_number = unique_number()
    other_account.client.number_orders.create(
        phone_numbers=[{"phone_number": quiet_number}], messaging_profile_id=quiet.id
    )

    asyncio.run(_load(server.base_url, account.api_key, slow.number))
    # The load's own sends are done (they are not what the probes may wait for) ...
    wait_until(lambda: _unsent(server, slow.number) == 0, 30)
    # ... while the slow receiver has a backlog of deliveries, seconds deep.
    wait_until(lambda: len(receiver.on(slow.hook_path)) >= 50, 20)
    assert len(receiver.on(slow.hook_path)) < 2 * LOAD_MESSAGES

    waits: list[float] = []
    for i in range(PROBES):
        sent = other_account.client.messages.send(
            from_=quiet_number, to=f"+1415778{i:04d}", text=f"probe {i}"
        ).data
        assert sent is not None and sent.id

        def reached_sent(message_id: str = str(sent.id)) -> Any:
            msg = other_account.client.messages.retrieve(message_id).data
            assert msg is not None and msg.to
            return msg if msg.sent_at is not None else None

        msg = wait_until(reached_sent, 30)
        assert msg.received_at is not None and msg.sent_at is not None
        waits.append(_seconds(str(msg.sent_at)) - _seconds(str(msg.received_at)))
        time.sleep(0.05)  # probes spread over the backlog, not a burst
    assert len(receiver.on(slow.hook_path)) < 2 * LOAD_MESSAGES, "the backlog drained first"
    assert max(waits) < 1.0, f"acceptance → sent: {sorted(waits)}"
