"""Storage on SQLite: a delivered SMS with its two webhooks (`message.sent`, `message.finalized`,
each delivered once) takes at most 2 KB of the database file, everything it leaves included (the
message, its events and attempts with their indexes, jobs and whatever else grew)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select, text

from signalpost.context import AppContext
from signalpost.models import jobs, messages, webhook_events
from tests.conftest import Account, unique_number
from tests.support.messaging import make_sender
from tests.support.receiver import WebhookReceiver
from tests.support.server import RunningServer
from tests.support.wait import wait_until

# Sent before measuring, so that the last page of each table and index is partly filled before as
# after (the slack of those pages then cancels out instead of counting against the messages).
WARM_UP = 100
MESSAGES = 400
LIMIT = 2048  # bytes per delivered SMS


@pytest.fixture(scope="module")
def settings_overrides() -> dict[str, Any]:
    # The test receiver (threads in this process) answers a burst of webhooks slowly: no retries.
    return {"webhook_timeout": 20.0}


def _pages_in_use(server: RunningServer) -> int:
    """Bytes of the database's pages that hold something (free pages left out)."""

    async def go(ctx: AppContext) -> int:
        async with ctx.db.transaction() as uow:
            one = await uow.conn.execute(text("PRAGMA page_count"))
            pages = int(one.scalar_one())
            free = int((await uow.conn.execute(text("PRAGMA freelist_count"))).scalar_one())
            size = int((await uow.conn.execute(text("PRAGMA page_size"))).scalar_one())
        return (pages - free) * size

    return server.run(go)


def _progress(server: RunningServer, org_id: str) -> dict[str, int]:
    async def go(ctx: AppContext) -> dict[str, int]:
        async with ctx.db.transaction() as uow:

            async def count(q: Any) -> int:
                return int((await uow.conn.execute(q)).scalar_one())

            e = webhook_events.c
            return {
                "final": await count(
                    select(func.count()).where(
                        messages.c.organization_id == org_id, messages.c.to_status == "delivered"
                    )
                ),
                "delivered_events": await count(
                    select(func.count()).where(e.organization_id == org_id, e.status == "delivered")
                ),
                "open_jobs": await count(
                    select(func.count()).where(jobs.c.status.in_(["queued", "running"]))
                ),
            }

    return server.run(go)


def test_a_delivered_sms_with_its_webhooks_takes_at_most_2_kb(
    server: RunningServer, account: Account, receiver: WebhookReceiver
) -> None:
    if not server.ctx.db.is_sqlite:
        pytest.skip("measures the SQLite file (dbstat, page counts)")
    client = account.client
    sender = make_sender(client, receiver, unique_number())

    def send(i: int) -> None:
        msg = client.messages.send(
            from_=sender.number, to=f"+1415666{i:04d}", text=f"storage message {i}"
        ).data
        assert msg is not None and msg.id

    def send_all(numbers: range) -> None:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(send, numbers))
        n = numbers.stop
        done = {"final": n, "delivered_events": 2 * n, "open_jobs": 0}
        wait_until(lambda: _progress(server, account.org.id) == done, 60)

    send_all(range(WARM_UP))
    before = _pages_in_use(server)
    send_all(range(WARM_UP, WARM_UP + MESSAGES))

    per_message = (_pages_in_use(server) - before) / MESSAGES
    assert per_message <= LIMIT, f"{per_message:.0f} bytes per delivered SMS"
