"""What the web inbox shows: message summaries, a change feed for live updates, message details.

The change feed is cursor based: a cursor is the server time when a read began. The next read asks
for everything that changed since a little before it (`OVERLAP`), so a change committed by a slower
transaction, or stamped by another process with a slightly different clock, is not missed; the page
replaces rows by id, so seeing a change twice is harmless.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import RowMapping

from signalpost.accounts import service as accounts
from signalpost.accounts.service import Organization
from signalpost.inbox import repository as repo
from signalpost.kit.clock import iso, utcnow
from signalpost.kit.db import UnitOfWork
from signalpost.messages.lifecycle import FINAL_STATUSES as MESSAGE_FINAL_STATUSES
from signalpost.messages.schemas import message_payload
from signalpost.webhooks.schemas import webhook_view

OVERLAP = timedelta(seconds=3)
RECENT_LIMIT = 100
CHANGES_LIMIT = 500
PREVIEW_CHARS = 120
RESPONSE_BODY_CHARS = 2000

# Outbound statuses after which nothing changes any more (the page stops highlighting them as busy).
FINAL_STATUSES = MESSAGE_FINAL_STATUSES | {"read"}
FAILED_STATUSES = frozenset(
    {"delivery_failed", "delivery_unconfirmed", "sending_failed", "expired", "cancelled"}
)


@dataclass(frozen=True)
class Feed:
    items: list[dict[str, Any]]
    cursor: datetime


@dataclass(frozen=True)
class Detail:
    summary: dict[str, Any]
    payload: dict[str, Any]
    deliveries: list[dict[str, Any]]


async def authenticate(uow: UnitOfWork, key: str | None) -> Organization | None:
    """The organization of an API key, or None for a missing, unknown or revoked key."""
    key = (key or "").strip()
    if not key:
        return None
    return await accounts.authenticate(uow, key)


def _status(row: Mapping[Any, Any]) -> str:
    if row["direction"] == "inbound":
        return str(row["from_status"] or row["to_status"])
    return str(row["to_status"])


def _status_class(row: Mapping[Any, Any]) -> str:
    status = _status(row)
    if status in FAILED_STATUSES:
        return "failed"
    if row["direction"] == "inbound" or status in FINAL_STATUSES:
        return "done"
    return "busy"


def _preview(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def _error_line(errors: Sequence[Mapping[Any, Any]] | None) -> str | None:
    if not errors:
        return None
    first = errors[0]
    return " ".join(str(p) for p in (first.get("code"), first.get("title")) if p) or None


def webhook_counts(events: Iterable[Mapping[Any, Any]]) -> dict[str, int]:
    counts = {"total": 0, "delivered": 0, "failed": 0, "pending": 0}
    for e in events:
        counts["total"] += 1
        status = e["status"] if e["status"] in ("delivered", "failed") else "pending"
        counts[status] += 1
    return counts


def summary(row: Mapping[Any, Any], events: Sequence[Mapping[Any, Any]]) -> dict[str, Any]:
    """One line of the inbox: who, what, where it stands, and how its webhooks went."""
    media = row["media"] or []
    return {
        "id": row["id"],
        "direction": row["direction"],
        "type": row["type"],
        "from": row["from_number"],
        "to": row["to_number"],
        "text": row["text"],
        "preview": _preview(row["text"]) or (f"[{len(media)} media]" if media else ""),
        "status": _status(row),
        "status_class": _status_class(row),
        "error": _error_line(row["errors"]),
        "received_at": iso(row["received_at"]),
        "updated_at": iso(row["updated_at"]),
        "webhooks": webhook_counts(events),
    }


def _by_message(events: Iterable[RowMapping]) -> dict[str, list[RowMapping]]:
    out: dict[str, list[RowMapping]] = defaultdict(list)
    for e in events:
        out[e["message_id"]].append(e)
    return out


async def feed(uow: UnitOfWork, org_id: str, after: datetime | None) -> Feed:
    """The newest messages (no cursor), or those that changed since the cursor `after`."""
    cursor = utcnow()
    if after is None:
        rows = await repo.recent_messages(uow, org_id, RECENT_LIMIT)
    else:
        ids = await repo.changed_message_ids(uow, org_id, after - OVERLAP)
        rows = await repo.messages_by_id(uow, org_id, sorted(ids), CHANGES_LIMIT)
    events = _by_message(await repo.events_for_messages(uow, org_id, [r["id"] for r in rows]))
    return Feed([summary(r, events.get(r["id"], [])) for r in rows], cursor)


def _attempt_view(row: Mapping[Any, Any]) -> dict[str, Any]:
    body = row["response_body"] or ""
    if len(body) > RESPONSE_BODY_CHARS:
        body = body[:RESPONSE_BODY_CHARS] + "…"
    code = row["status_code"]
    return {
        "id": row["id"],
        "attempt": row["attempt"],
        "url": row["url"],
        "status_code": code,
        "ok": code is not None and 200 <= code < 300,
        "latency_ms": None if row["latency_ms"] is None else round(float(row["latency_ms"]), 1),
        "error": row["error"],
        "response_body": body,
        "started_at": iso(row["started_at"]),
        "finished_at": iso(row["finished_at"]),
    }


def delivery(event: RowMapping, attempts: Sequence[RowMapping]) -> dict[str, Any]:
    """One webhook event of a message with every attempt to deliver it."""
    status = event["status"] if event["status"] in ("delivered", "failed") else "pending"
    return {
        "id": event["id"],
        "event_type": event["event_type"],
        "status": status,
        "attempts": [_attempt_view(a) for a in attempts],
        "urls": list(event["urls"] or []),
        "delivered_to": event["delivered_to"],
        "occurred_at": iso(event["occurred_at"]),
        "finished_at": iso(event["finished_at"]),
        "body": webhook_view(event),
    }


async def detail(uow: UnitOfWork, org_id: str, message_id: str) -> Detail | None:
    """A message as the API returns it, with its webhook deliveries; None if not the org's."""
    row = await repo.message(uow, org_id, message_id)
    if row is None:
        return None
    events = await repo.events_for_messages(uow, org_id, [message_id])
    attempts: dict[str, list[RowMapping]] = defaultdict(list)
    for a in await repo.attempts_for_events(uow, [e["id"] for e in events]):
        attempts[a["event_id"]].append(a)
    return Detail(
        summary(row, events),
        message_payload(row),
        [delivery(e, attempts.get(e["id"], [])) for e in events],
    )


async def numbers(uow: UnitOfWork, org_id: str) -> list[str]:
    return await repo.owned_numbers(uow, org_id)


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
