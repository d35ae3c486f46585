"""Read queries of the web inbox: one organization's messages and the webhooks they caused."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import RowMapping

from signalpost.kit.db import UnitOfWork
from signalpost.models import messages, phone_numbers, webhook_attempts, webhook_events


async def recent_messages(uow: UnitOfWork, org_id: str, limit: int) -> list[RowMapping]:
    """The organization's newest messages, newest first."""
    q = (
        select(messages)
        .where(messages.c.organization_id == org_id)
        .order_by(messages.c.received_at.desc(), messages.c.id.desc())
        .limit(limit)
    )
    return list((await uow.conn.execute(q)).mappings().all())


async def changed_message_ids(uow: UnitOfWork, org_id: str, since: datetime) -> set[str]:
    """Ids of messages that changed at or after `since`: their row, a new webhook event, or an
    attempt to deliver one (each probe is one index range scan)."""
    updated = select(messages.c.id).where(
        messages.c.organization_id == org_id, messages.c.updated_at >= since
    )
    new_events = select(webhook_events.c.message_id).where(
        webhook_events.c.organization_id == org_id,
        webhook_events.c.occurred_at >= since,
        webhook_events.c.message_id.is_not(None),
    )
    # Driven by the attempts' time index; the organization is checked on the (few, recent) rows,
    # as a filter on it in SQL makes SQLite walk the organization's whole event history instead.
    attempted = (
        select(webhook_events.c.message_id, webhook_events.c.organization_id)
        .select_from(
            webhook_attempts.join(
                webhook_events, webhook_events.c.id == webhook_attempts.c.event_id
            )
        )
        .where(webhook_attempts.c.finished_at >= since, webhook_events.c.message_id.is_not(None))
    )
    ids: set[str] = set()
    for q in (updated, new_events):
        ids.update(str(i) for i in (await uow.conn.execute(q)).scalars().all())
    for message_id, owner in (await uow.conn.execute(attempted)).all():
        if owner == org_id:
            ids.add(str(message_id))
    return ids


async def messages_by_id(
    uow: UnitOfWork, org_id: str, message_ids: Sequence[str], limit: int
) -> list[RowMapping]:
    """These messages (those of the organization only), newest first."""
    if not message_ids:
        return []
    q = (
        select(messages)
        .where(messages.c.id.in_(list(message_ids)))
        .order_by(messages.c.received_at.desc(), messages.c.id.desc())
    )
    rows = (await uow.conn.execute(q)).mappings().all()
    return [r for r in rows if r["organization_id"] == org_id][:limit]


async def message(uow: UnitOfWork, org_id: str, message_id: str) -> RowMapping | None:
    q = select(messages).where(messages.c.id == message_id, messages.c.organization_id == org_id)
    return (await uow.conn.execute(q)).mappings().first()


async def events_for_messages(
    uow: UnitOfWork, org_id: str, message_ids: Sequence[str]
) -> list[RowMapping]:
    """The webhook events of these messages, oldest first.

    Looked up by message id (an index hit); the organization is checked on the rows, as a filter on
    it in SQL makes SQLite scan the organization's whole event history instead.
    """
    if not message_ids:
        return []
    q = (
        select(webhook_events)
        .where(webhook_events.c.message_id.in_(list(message_ids)))
        .order_by(webhook_events.c.occurred_at, webhook_events.c.id)
    )
    rows = (await uow.conn.execute(q)).mappings().all()
    return [r for r in rows if r["organization_id"] == org_id]


async def attempts_for_events(uow: UnitOfWork, event_ids: Sequence[str]) -> list[RowMapping]:
    """The attempts of these events, in the order they were made."""
    if not event_ids:
        return []
    q = (
        select(webhook_attempts)
        .where(webhook_attempts.c.event_id.in_(list(event_ids)))
        .order_by(webhook_attempts.c.attempt, webhook_attempts.c.started_at)
    )
    return list((await uow.conn.execute(q)).mappings().all())


async def owned_numbers(uow: UnitOfWork, org_id: str, limit: int = 200) -> list[str]:
    """The organization's phone numbers (what a simulated handset can write to)."""
    q = (
        select(phone_numbers.c.phone_number)
        .where(phone_numbers.c.organization_id == org_id)
        .order_by(phone_numbers.c.phone_number)
        .limit(limit)
    )
    return [str(n) for n in (await uow.conn.execute(q)).scalars().all()]
