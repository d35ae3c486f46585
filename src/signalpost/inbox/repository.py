"""Read queries of the web inbox: one organization's messages and the webhooks they caused.

Lists are pages of at most `limit` rows, newest first, continued with a keyset cursor (the
`received_at` and id of the last row shown). Every list walks an index in that order and stops
after a page: the organization's `(organization_id, received_at)` index, or for a number the
`(organization_id, from_number | to_number, received_at)` indexes, one query per side merged here.
Other filters (text, direction, status, profile) are checked on the rows walked; a text search
that matches little may walk much of the organization's history (bound it with a date range).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.sql.elements import ColumnElement

from signalpost.kit.db import UnitOfWork
from signalpost.models import (
    messages,
    messaging_profiles,
    phone_numbers,
    webhook_attempts,
    webhook_events,
)
from signalpost.webhooks.repository import (
    ATTEMPT_COLUMNS,
    ATTEMPTS_WITH_EVENTS,
    DELIVERED_TO,
    EVENT_COLUMNS,
    event_row,
)


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
) -> list[dict[str, Any]]:
    """The webhook events of these messages, oldest first (payloads decoded, `event_row`).

    Looked up by message id (an index hit); the organization is checked on the rows, as a filter on
    it in SQL makes SQLite scan the organization's whole event history instead.
    """
    if not message_ids:
        return []
    q = (
        select(*EVENT_COLUMNS, DELIVERED_TO.label("delivered_to"))
        .where(webhook_events.c.message_id.in_(list(message_ids)))
        .order_by(webhook_events.c.occurred_at, webhook_events.c.id)
    )
    rows = (await uow.conn.execute(q)).mappings().all()
    return [event_row(r) for r in rows if r["organization_id"] == org_id]


async def attempts_for_events(uow: UnitOfWork, event_ids: Sequence[str]) -> list[RowMapping]:
    """The attempts of these events, in the order they were made."""
    if not event_ids:
        return []
    q = (
        select(*ATTEMPT_COLUMNS)
        .select_from(ATTEMPTS_WITH_EVENTS)
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


async def profiles(uow: UnitOfWork, org_id: str, limit: int = 200) -> list[RowMapping]:
    """The organization's messaging profiles (id, name), by name: the profile filter's choices."""
    q = (
        select(messaging_profiles.c.id, messaging_profiles.c.name)
        .where(messaging_profiles.c.organization_id == org_id)
        .order_by(messaging_profiles.c.name, messaging_profiles.c.id)
        .limit(limit)
    )
    return list((await uow.conn.execute(q)).mappings().all())


# --- search and filters --------------------------------------------------------------------------

FAILED = ("delivery_failed", "delivery_unconfirmed", "sending_failed", "expired", "cancelled")
# What the inbox shows as a message's status: the handset side's for inbound messages.
STATUS_COLUMN = case(
    (
        messages.c.direction == "inbound",
        func.coalesce(messages.c.from_status, messages.c.to_status),
    ),
    else_=messages.c.to_status,
)


@dataclass(frozen=True)
class MessageQuery:
    """Filters of the inbox's message list, already checked."""

    text: str | None = None  # in the text or either number
    number: str | None = None  # exactly this number, on either side
    direction: str | None = None
    status: str | None = None  # a status, or "failed" for any failure
    profile_id: str | None = None
    since: datetime | None = None  # received at or after
    until: datetime | None = None  # received before
    before: tuple[datetime, str] | None = None  # the page starts after this (received_at, id)


def _conditions(org_id: str, f: MessageQuery) -> list[ColumnElement[bool]]:
    m = messages.c
    conds: list[ColumnElement[bool]] = [m.organization_id == org_id]
    if f.text:
        conds.append(
            or_(
                m.text.icontains(f.text, autoescape=True),
                m.from_number.contains(f.text, autoescape=True),
                m.to_number.contains(f.text, autoescape=True),
            )
        )
    if f.direction:
        conds.append(m.direction == f.direction)
    if f.status == "failed":
        conds.append(STATUS_COLUMN.in_(FAILED))
    elif f.status:
        conds.append(STATUS_COLUMN.in_([f.status]))
    if f.profile_id:
        conds.append(m.messaging_profile_id == f.profile_id)
    if f.since:
        conds.append(m.received_at >= f.since)
    if f.until:
        conds.append(m.received_at < f.until)
    if f.before:
        at, last_id = f.before
        conds.append(or_(m.received_at < at, and_(m.received_at == at, m.id < last_id)))
    return conds


def _newest(rows: Sequence[RowMapping], limit: int) -> list[RowMapping]:
    distinct = {r["id"]: r for r in rows}.values()
    return sorted(distinct, key=lambda r: (r["received_at"], r["id"]), reverse=True)[:limit]


async def _page(
    uow: UnitOfWork, conds: Sequence[ColumnElement[bool]], limit: int
) -> list[RowMapping]:
    q = (
        select(messages)
        .where(*conds)
        .order_by(messages.c.received_at.desc(), messages.c.id.desc())
        .limit(limit)
    )
    return list((await uow.conn.execute(q)).mappings().all())


async def search_messages(
    uow: UnitOfWork, org_id: str, f: MessageQuery, limit: int
) -> list[RowMapping]:
    """A page of the organization's messages matching `f`, newest first."""
    conds = _conditions(org_id, f)
    if not f.number:
        return await _page(uow, conds, limit)
    rows: list[RowMapping] = []
    for side in (messages.c.from_number, messages.c.to_number):
        rows += await _page(uow, [*conds, side == f.number], limit)
    return _newest(rows, limit)


def _unindexed(column: ColumnElement[str]) -> ColumnElement[str]:
    return func.coalesce(column, "")


async def conversation(
    uow: UnitOfWork,
    org_id: str,
    ours: str,
    handset: str,
    limit: int,
    before: tuple[datetime, str] | None = None,
) -> list[RowMapping]:
    """A page of the messages between one of our numbers and a handset, newest first: what we
    sent it and what it wrote to us (each side found through the handset's number)."""
    m = messages.c
    base = _conditions(org_id, MessageQuery(before=before))
    # Our number is compared through an expression so that no index is chosen for it: each side
    # walks the handset's messages (few), not all of our number's.
    sent = [*base, m.to_number == handset, _unindexed(m.from_number) == ours]
    got = [*base, m.from_number == handset, _unindexed(m.to_number) == ours]
    sent.append(m.direction == "outbound")
    got.append(m.direction == "inbound")
    return _newest([*await _page(uow, sent, limit), *await _page(uow, got, limit)], limit)


async def matching_ids(
    uow: UnitOfWork, org_id: str, message_ids: Sequence[str], f: MessageQuery | None
) -> set[str]:
    """Those of these messages that are the organization's and match `f` (all when None)."""
    if not message_ids:
        return set()
    conds = _conditions(org_id, f) if f is not None else [messages.c.organization_id == org_id]
    q = select(messages.c.id).where(messages.c.id.in_(list(message_ids)), *conds)
    return {str(i) for i in (await uow.conn.execute(q)).scalars().all()}
