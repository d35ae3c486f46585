"""Retention: rows older than `retention_days` are purged by the background sweep, in batches, on
both backends; everything younger stays; SQLite gives the space back (incremental vacuum)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text, update
from telnyx import Telnyx

from signalpost.context import AppContext
from signalpost.kit.clock import utcnow
from signalpost.models import (
    idempotency_keys,
    jobs,
    link_clicks,
    messages,
    short_links,
    webhook_attempts,
    webhook_events,
)
from tests.conftest import Account, unique_number
from tests.support.messaging import make_sender, wait_final
from tests.support.receiver import WebhookReceiver
from tests.support.server import RunningServer
from tests.support.wait import wait_until

OLD = timedelta(days=40)


@pytest.fixture(scope="module")
def settings_overrides() -> dict[str, Any]:
    # A sweep every 0.2 s in batches of 3 rows: several batches per kind of row.
    return {"retention_days": 30, "retention_interval": 0.2, "retention_batch": 3}


def _send(client: Telnyx, sender: str, n: int, tag: str) -> list[str]:
    out = []
    for i in range(n):
        msg = client.messages.send(
            from_=sender,
            to=f"+1415666{i:04d}",
            text=f"{tag} {i}",
            extra_headers={"Idempotency-Key": f"{tag}-{i}-{uuid.uuid4().hex}"},
        ).data
        assert msg is not None and msg.id
        out.append(msg.id)
    return out


def _extras(server: RunningServer, org_id: str, message_id: str, old: bool) -> dict[str, Any]:
    """A failed job, a short link with a click: old or young."""
    at = utcnow() - OLD if old else utcnow()
    code = uuid.uuid4().hex[:10]

    async def go(ctx: AppContext) -> dict[str, Any]:
        async with ctx.db.transaction() as uow:
            result = await uow.conn.execute(
                insert(jobs)
                .values(
                    kind="retention.test",
                    payload={},
                    status="failed",
                    attempts=1,
                    max_attempts=1,
                    run_at=at,
                    created_at=at,
                    updated_at=at,
                )
                .returning(jobs.c.id)
            )
            job = result.scalar_one()
            await uow.conn.execute(
                insert(short_links).values(
                    code=code,
                    organization_id=org_id,
                    message_id=message_id,
                    recipient="+14156660000",
                    original_url="https://example.com/",
                    domain="example.com",
                    short_url=f"https://example.com/{code}",
                    created_at=at,
                )
            )
            click = str(uuid.uuid4())
            await uow.conn.execute(
                insert(link_clicks).values(id=click, code=code, clicked_at=at, is_bot=False)
            )
        return {"job": job, "click": click}

    return server.run(go)


def _age(server: RunningServer, org_id: str, message_ids: list[str], key_prefix: str) -> None:
    """Move messages, their events and idempotency records 40 days back."""
    then = utcnow() - OLD

    async def go(ctx: AppContext) -> None:
        async with ctx.db.transaction() as uow:
            await uow.conn.execute(
                update(messages).where(messages.c.id.in_(message_ids)).values(received_at=then)
            )
            await uow.conn.execute(
                update(webhook_events)
                .where(webhook_events.c.message_id.in_(message_ids))
                .values(occurred_at=then)
            )
            await uow.conn.execute(
                update(idempotency_keys)
                .where(
                    idempotency_keys.c.organization_id == org_id,
                    idempotency_keys.c.key.startswith(key_prefix),
                )
                .values(created_at=then)
            )

    server.run(go)


def _age_keys(server: RunningServer, org_id: str, prefix: str, by: timedelta) -> None:
    async def go(ctx: AppContext) -> None:
        async with ctx.db.transaction() as uow:
            await uow.conn.execute(
                update(idempotency_keys)
                .where(
                    idempotency_keys.c.organization_id == org_id,
                    idempotency_keys.c.key.startswith(prefix),
                )
                .values(created_at=utcnow() - by)
            )

    server.run(go)


def _present(server: RunningServer, message_ids: list[str]) -> dict[str, int]:
    async def go(ctx: AppContext) -> dict[str, int]:
        async with ctx.db.transaction() as uow:
            events = select(webhook_events.c.id).where(webhook_events.c.message_id.in_(message_ids))

            async def count(q: Any) -> int:
                return int((await uow.conn.execute(q)).scalar_one())

            return {
                "messages": await count(select(func.count()).where(messages.c.id.in_(message_ids))),
                "events": await count(select(func.count()).select_from(events.subquery())),
                "attempts": await count(
                    select(func.count()).where(webhook_attempts.c.event_id.in_(events))
                ),
            }

    return server.run(go)


def _pending_events(server: RunningServer, message_ids: list[str]) -> int:
    async def go(ctx: AppContext) -> int:
        async with ctx.db.transaction() as uow:
            q = select(func.count()).where(
                webhook_events.c.message_id.in_(message_ids), webhook_events.c.status == "pending"
            )
            return int((await uow.conn.execute(q)).scalar_one())

    return server.run(go)


def _exists(server: RunningServer, table: Any, column: Any, value: Any) -> bool:
    async def go(ctx: AppContext) -> bool:
        async with ctx.db.transaction() as uow:
            q = select(func.count()).select_from(table).where(column == value)
            return int((await uow.conn.execute(q)).scalar_one()) > 0

    return server.run(go)


def _idempotency_count(server: RunningServer, org_id: str) -> int:
    async def go(ctx: AppContext) -> int:
        async with ctx.db.transaction() as uow:
            q = select(func.count()).where(idempotency_keys.c.organization_id == org_id)
            return int((await uow.conn.execute(q)).scalar_one())

    return server.run(go)


def _sqlite_pragma(server: RunningServer, name: str) -> int:
    async def go(ctx: AppContext) -> int:
        async with ctx.db.transaction() as uow:
            return int((await uow.conn.execute(text(f"PRAGMA {name}"))).scalar_one())

    return server.run(go)


def test_old_rows_are_purged_and_young_ones_kept(
    server: RunningServer, account: Account, receiver: WebhookReceiver
) -> None:
    client = account.client
    sender = make_sender(client, receiver, unique_number())
    old = _send(client, sender.number, 7, "old")
    young = _send(client, sender.number, 5, "young")
    for mid in old + young:
        wait_final(client, mid)
    # Each message's two webhooks (sent, finalized) delivered and their attempts recorded, and no
    # event still pending (one whose POST failed is tried again: counting attempts is not enough).
    for batch in (old, young):
        wait_until(lambda b=batch: _present(server, b)["attempts"] >= 2 * len(b), 20)
        wait_until(lambda b=batch: _pending_events(server, b) == 0, 20)
    before_young = _present(server, young)
    assert _idempotency_count(server, account.org.id) == 12
    old_extra = _extras(server, account.org.id, old[0], old=True)
    young_extra = _extras(server, account.org.id, young[0], old=False)

    _age(server, account.org.id, old, "old-")
    # Past the idempotency TTL (24 h) but within the retention period: no longer of any use.
    _age_keys(server, account.org.id, "young-0-", timedelta(days=2))

    wait_until(lambda: _present(server, old) == {"messages": 0, "events": 0, "attempts": 0}, 20)
    wait_until(lambda: not _exists(server, jobs, jobs.c.id, old_extra["job"]), 20)
    wait_until(lambda: not _exists(server, link_clicks, link_clicks.c.id, old_extra["click"]), 20)
    wait_until(lambda: _idempotency_count(server, account.org.id) == 4, 20)

    # Nothing younger is touched.
    assert _present(server, young) == before_young
    assert before_young["messages"] == 5 and before_young["attempts"] >= 10
    assert _exists(server, jobs, jobs.c.id, young_extra["job"])
    assert _exists(server, link_clicks, link_clicks.c.id, young_extra["click"])
    for mid in young:
        assert client.messages.retrieve(mid).data is not None
    deliveries = [d.id for d in client.webhook_deliveries.list()]
    assert len(deliveries) == before_young["events"]

    if server.ctx.db.is_sqlite:
        assert _sqlite_pragma(server, "auto_vacuum") == 2  # incremental, set at creation
        wait_until(lambda: _sqlite_pragma(server, "freelist_count") == 0, 10)
