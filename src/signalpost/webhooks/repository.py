"""SQL for webhook events (one per event to deliver) and their attempts (one row per POST)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Text, and_, bindparam, case, cast, func, or_, select, type_coerce, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.sql.elements import ColumnElement

from signalpost.kit.compact import stored_text
from signalpost.kit.db import UnitOfWork
from signalpost.kit.jsonio import loads
from signalpost.kit.packed import PackedStored, context_text, packed_text, stored_json_text
from signalpost.models import organizations, webhook_attempts, webhook_events

# When an event's last attempt ended; looked up only for events tried before (most are on their
# first attempt, and the lookup is most of what reading an event's state costs).
_LAST_FINISHED = case(
    (
        webhook_events.c.attempts > 0,
        select(func.max(webhook_attempts.c.finished_at))
        .where(webhook_attempts.c.event_id == webhook_events.c.id)
        .scalar_subquery(),
    ),
    else_=None,
)
# An attempt's URL: stored empty when it is its event's first URL (`service.stored_url`).
ATTEMPT_URL = case(
    (webhook_attempts.c.url == "", webhook_events.c.urls[0].as_string()),
    else_=webhook_attempts.c.url,
)
# Every column of an attempt, its URL resolved; select from `ATTEMPTS_WITH_EVENTS`.
ATTEMPT_COLUMNS = (*(c for c in webhook_attempts.c if c.key != "url"), ATTEMPT_URL.label("url"))
ATTEMPTS_WITH_EVENTS = webhook_attempts.join(
    webhook_events, webhook_events.c.id == webhook_attempts.c.event_id
)

# Where an event was delivered: the URL of its last 2xx attempt (a delivery ends with the first one;
# a redelivery that succeeds adds a later one).
DELIVERED_TO = (
    select(ATTEMPT_URL)
    .where(
        webhook_attempts.c.event_id == webhook_events.c.id,
        webhook_attempts.c.status_code >= 200,
        webhook_attempts.c.status_code < 300,
    )
    .order_by(webhook_attempts.c.attempt.desc())
    .limit(1)
    .scalar_subquery()
)
# An event's payload as stored: packed with its row's ids (kit.packed, tag 2), read by `event_row`.
_STORED_PAYLOAD = type_coerce(webhook_events.c.payload, PackedStored()).label("payload_stored")
# Every column of an event, its payload as stored.
EVENT_COLUMNS = (*(c for c in webhook_events.c if c.key != "payload"), _STORED_PAYLOAD)


def payload_context(
    event_type: str,
    occurred_at: datetime,
    organization_id: str,
    message_id: str | None,
    event_id: str,
) -> bytes:
    """The strings an event's payload is packed with: what of its row it repeats (the SQL search
    gives the same columns, in this order, to `packed_text`)."""
    parts = (event_type, occurred_at, organization_id, message_id, event_id)
    return "".join(context_text(p) for p in parts).encode()


def event_row(row: Mapping[Any, Any], *, decode: bool = True) -> dict[str, Any]:
    """An event read with its stored payload (`EVENT_COLUMNS`, or its ids and `payload_stored`):
    the payload as JSON text in `payload_json` and, with `decode`, as a value in `payload`."""
    out = dict(row)
    context = payload_context(
        out["event_type"], out["occurred_at"], out["organization_id"], out["message_id"], out["id"]
    )
    out["payload_json"] = stored_json_text(out.pop("payload_stored"), context)
    if decode:
        out["payload"] = loads(out["payload_json"])
    return out


_DELIVERY_STATES = (
    select(
        # What planning the next attempt needs, and no more: each column read costs, per event.
        webhook_events.c.id,
        webhook_events.c.organization_id,
        webhook_events.c.event_type,
        webhook_events.c.occurred_at,
        webhook_events.c.message_id,
        webhook_events.c.urls,
        webhook_events.c.status,
        webhook_events.c.attempts,
        # The payload's stored JSON text: the body is spliced around it, not decoded and encoded.
        _STORED_PAYLOAD,
        organizations.c.signing_seed,
        _LAST_FINISHED.label("last_attempt_finished_at"),
    )
    .join(organizations, organizations.c.id == webhook_events.c.organization_id)
    .where(webhook_events.c.id.in_(bindparam("event_ids", expanding=True)))
)
# The pending events of some messages, for delivering each message's events in order.
_PENDING_OF_MESSAGES = select(
    webhook_events.c.id,
    webhook_events.c.message_id,
    webhook_events.c.occurred_at,
    webhook_events.c.attempts,
    _LAST_FINISHED.label("last_attempt_finished_at"),
).where(
    webhook_events.c.message_id.in_(bindparam("message_ids", expanding=True)),
    webhook_events.c.status == "pending",
)
# Advancing an event: the row with this id, still pending with this many attempts recorded.
_ADVANCE = (("_event_id", "id"), ("_pending", "status"), ("_previous", "attempts"))
# Where the deliveries of several events stand, their rows locked (PostgreSQL) in id order.
_PROGRESS = (
    select(webhook_events.c.id, webhook_events.c.status, webhook_events.c.attempts)
    .where(webhook_events.c.id.in_(bindparam("event_ids", expanding=True)))
    .order_by(webhook_events.c.id)
)
_PROGRESS_FOR_UPDATE = _PROGRESS.with_for_update()


async def insert_events(uow: UnitOfWork, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        await uow.conn.insert_many(webhook_events, rows)


async def delivery_states(uow: UnitOfWork, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each event (its payload as JSON text), its organization's signing seed and the end of its
    last attempt, in one query, by event id (missing ones left out)."""
    if not event_ids:
        return {}
    result = await uow.conn.execute(_DELIVERY_STATES, {"event_ids": list(event_ids)})
    return {row["id"]: event_row(row, decode=False) for row in result.mappings()}


async def pending_events_of_messages(
    uow: UnitOfWork, message_ids: Sequence[str]
) -> list[RowMapping]:
    """The pending events of these messages, with their attempts and the end of the last one."""
    if not message_ids:
        return []
    result = await uow.conn.execute(_PENDING_OF_MESSAGES, {"message_ids": sorted(set(message_ids))})
    return list(result.mappings())


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt to store: its `webhook_attempts` row and the event's new values."""

    event_id: str
    attempt: Mapping[str, Any]
    event_values: Mapping[str, Any]


async def record_attempts(uow: UnitOfWork, records: Sequence[AttemptRecord]) -> set[str]:
    """Store attempt number `attempt["attempt"]` of each event and advance the event, unless that
    attempt is recorded already; returns the ids of the events recorded.

    The events' rows are read (and on PostgreSQL locked) first: an attempt is recorded only when
    its event is still pending with `attempt - 1` recorded attempts, so when two workers POSTed the
    same attempt (a lease ran out mid-POST) only the first one records it.
    """
    if not records:
        return set()
    stmt = _PROGRESS_FOR_UPDATE if uow.conn.dialect.name == "postgresql" else _PROGRESS
    ids = sorted({r.event_id for r in records})
    progress = {
        row.id: (row.status, row.attempts)
        for row in await uow.conn.execute(stmt, {"event_ids": ids})
    }
    todo: list[AttemptRecord] = []
    for r in records:
        number = int(r.attempt["attempt"])
        if progress.get(r.event_id) == ("pending", number - 1):
            todo.append(r)
            progress[r.event_id] = ("recorded", -1)  # one attempt per event and call
    # executemany needs the same columns in every parameter set: one statement per shape.
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in todo:
        number = int(r.attempt["attempt"])
        params = {
            "_event_id": r.event_id,
            "_pending": "pending",
            "_previous": number - 1,
            "attempts": number,
        }
        params.update(r.event_values)
        shapes.setdefault(tuple(sorted(params)), []).append(params)
    for params_list in shapes.values():
        advanced = await uow.conn.update_many(webhook_events, _ADVANCE, params_list)
        if 0 <= advanced != len(params_list):
            raise RuntimeError("webhook events changed while locked")  # rolls back; never expected
    if todo:
        await uow.conn.insert_many(
            webhook_attempts, [{"event_id": r.event_id, **r.attempt} for r in todo]
        )
    return {r.event_id for r in todo}


async def finish_event(uow: UnitOfWork, event_id: str, status: str, finished_at: datetime) -> bool:
    """Mark a still-pending event finished without a further attempt (no URL left to try)."""
    result = await uow.conn.execute(
        update(webhook_events)
        .where(webhook_events.c.id == event_id, webhook_events.c.status == "pending")
        .values(status=status, finished_at=finished_at)
    )
    return result.rowcount == 1


# --- the deliveries API ------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryQuery:
    """Filters of `GET /webhook_deliveries`, already parsed."""

    status: str | None = None
    event_types: Sequence[str] = ()
    webhook_contains: str | None = None
    attempts_contains: str | None = None
    started_gte: datetime | None = None
    started_lte: datetime | None = None
    finished_gte: datetime | None = None
    finished_lte: datetime | None = None


def _conditions(organization_id: str, f: DeliveryQuery) -> list[ColumnElement[bool]]:
    e = webhook_events.c
    conds: list[ColumnElement[bool]] = [e.organization_id == organization_id]
    if f.status:
        conds.append(e.status == f.status)
    if f.event_types:
        conds.append(e.event_type.in_(list(f.event_types)))
    if f.webhook_contains:
        text = f.webhook_contains
        conds.append(
            or_(
                stored_text(e.id).contains(text, autoescape=True),
                stored_text(e.event_type).contains(text, autoescape=True),
                packed_text(
                    e.payload, e.event_type, e.occurred_at, e.organization_id, e.message_id, e.id
                ).contains(text, autoescape=True),
            )
        )
    if f.attempts_contains:
        text = f.attempts_contains
        a = webhook_attempts.c
        conds.append(
            select(a.attempt)
            .where(
                a.event_id == e.id,
                or_(
                    ATTEMPT_URL.contains(text, autoescape=True),
                    a.response_body.contains(text, autoescape=True),
                    a.error.contains(text, autoescape=True),
                    cast(a.status_code, Text).contains(text, autoescape=True),
                ),
            )
            .exists()
        )
    if f.started_gte:
        conds.append(e.started_at >= f.started_gte)
    if f.started_lte:
        conds.append(e.started_at <= f.started_lte)
    if f.finished_gte:
        conds.append(e.finished_at >= f.finished_gte)
    if f.finished_lte:
        conds.append(e.finished_at <= f.finished_lte)
    return conds


async def list_events(
    uow: UnitOfWork, organization_id: str, f: DeliveryQuery, *, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    where = and_(*_conditions(organization_id, f))
    total = (
        await uow.conn.execute(select(func.count()).select_from(webhook_events).where(where))
    ).scalar_one()
    q = (
        select(*EVENT_COLUMNS)
        .where(where)
        .order_by(webhook_events.c.occurred_at.desc(), webhook_events.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    rows = [event_row(r) for r in (await uow.conn.execute(q)).mappings()]
    return rows, int(total)


async def get_event(uow: UnitOfWork, organization_id: str, event_id: str) -> dict[str, Any] | None:
    q = select(*EVENT_COLUMNS).where(
        webhook_events.c.id == event_id, webhook_events.c.organization_id == organization_id
    )
    row = (await uow.conn.execute(q)).mappings().first()
    return None if row is None else event_row(row)


async def attempts_for(uow: UnitOfWork, event_ids: Sequence[str]) -> dict[str, list[RowMapping]]:
    """Attempts per event, most recent first."""
    out: dict[str, list[RowMapping]] = {i: [] for i in event_ids}
    if not event_ids:
        return out
    q = (
        select(*ATTEMPT_COLUMNS)
        .select_from(ATTEMPTS_WITH_EVENTS)
        .where(webhook_attempts.c.event_id.in_(list(event_ids)))
        .order_by(webhook_attempts.c.event_id, webhook_attempts.c.attempt.desc())
    )
    for row in (await uow.conn.execute(q)).mappings():
        out[row["event_id"]].append(row)
    return out


# --- redelivery ------------------------------------------------------------------------------

_REDELIVERY_STATE = (
    select(
        webhook_events.c.id,
        webhook_events.c.organization_id,
        webhook_events.c.message_id,
        webhook_events.c.event_type,
        webhook_events.c.occurred_at,
        webhook_events.c.urls,
        webhook_events.c.status,
        webhook_events.c.attempts,
        DELIVERED_TO.label("delivered_to"),
        _STORED_PAYLOAD,
        organizations.c.signing_seed,
    )
    .join(organizations, organizations.c.id == webhook_events.c.organization_id)
    .where(
        webhook_events.c.id == bindparam("event_id"),
        webhook_events.c.organization_id == bindparam("organization_id"),
    )
)


async def redelivery_state(
    uow: UnitOfWork, organization_id: str, event_id: str
) -> dict[str, Any] | None:
    """What sending an event again needs (its payload as stored JSON text and its organization's
    signing seed), or None when the event is not this organization's."""
    result = await uow.conn.execute(
        _REDELIVERY_STATE, {"event_id": event_id, "organization_id": organization_id}
    )
    row = result.mappings().first()
    return None if row is None else event_row(row, decode=False)


async def record_redelivery(
    uow: UnitOfWork, event_id: str, attempt: Mapping[str, Any], delivered: bool
) -> int:
    """Store a redelivery as the event's next attempt; returns the attempt number it got.

    The number is taken from the event's row read (and on PostgreSQL locked) here, so a redelivery
    recorded while a queued attempt of the same event is in flight never takes its number: the
    queued one then finds its number taken and plans again from what is stored. A successful
    redelivery marks the event delivered; a failed one leaves its status as it was.
    """
    stmt = _PROGRESS_FOR_UPDATE if uow.conn.dialect.name == "postgresql" else _PROGRESS
    row = (await uow.conn.execute(stmt, {"event_ids": [event_id]})).first()
    if row is None:
        raise LookupError(event_id)
    number = int(row.attempts) + 1
    values: dict[str, Any] = {"attempts": number}
    if delivered:
        values.update(status="delivered", finished_at=attempt["finished_at"])
    await uow.conn.execute(
        update(webhook_events)
        .where(webhook_events.c.id == event_id)
        .values(
            started_at=func.coalesce(webhook_events.c.started_at, attempt["started_at"]),
            **values,
        )
    )
    await uow.conn.insert_many(
        webhook_attempts, [{**attempt, "event_id": event_id, "attempt": number}]
    )
    return number
