"""What the web inbox shows: message summaries and searches, conversations, a change feed for
live updates, message details with every webhook attempt as signed and sent.

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
from signalpost.kit.clock import iso, parse_datetime, utcnow
from signalpost.kit.db import UnitOfWork
from signalpost.kit.signing import verify
from signalpost.messages.lifecycle import FINAL_STATUSES as MESSAGE_FINAL_STATUSES
from signalpost.messages.schemas import message_payload
from signalpost.webhooks.schemas import webhook_view
from signalpost.webhooks.service import body_bytes

OVERLAP = timedelta(seconds=3)
RECENT_LIMIT = 100
PAGE_SIZE = 50
CONVERSATION_PAGE = 100
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
class Page:
    """A page of summaries, newest first; `next_before` continues it (None on the last page)."""

    items: list[dict[str, Any]]
    next_before: str | None
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
        "media": [media_view(m) for m in media],
        "subject": row["subject"],
        "ours": row["from_number"] if row["direction"] == "outbound" else row["to_number"],
        "handset": row["to_number"] if row["direction"] == "outbound" else row["from_number"],
        "profile_id": row["messaging_profile_id"],
    }


def media_view(item: Mapping[str, Any] | str) -> dict[str, Any]:
    """One media item as the inbox previews it: `kind` is image, video, audio or file."""
    if isinstance(item, str):
        item = {"url": item}
    content_type = str(item.get("content_type") or "")
    kind = content_type.split("/", 1)[0]
    size = item.get("size")
    return {
        "url": str(item.get("url") or ""),
        "content_type": content_type or "unknown type",
        "kind": kind if kind in ("image", "video", "audio") else "file",
        "size": size if isinstance(size, int) else None,
    }


def cursor_of(row: Mapping[Any, Any]) -> str:
    """The keyset cursor after `row`: `<received_at>~<id>`."""
    return f"{row['received_at']}~{row['id']}"


def parse_before(value: str) -> tuple[datetime, str]:
    """`cursor_of`'s text back (ValueError when it is not one)."""
    at, sep, last_id = value.partition("~")
    if not sep or not last_id:
        raise ValueError(value)
    return parse_datetime(at), last_id


def _by_message(events: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
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


def _attempt_view(
    row: Mapping[Any, Any], event: Mapping[Any, Any], public_key: str | None
) -> dict[str, Any]:
    body = row["response_body"] or ""
    if len(body) > RESPONSE_BODY_CHARS:
        body = body[:RESPONSE_BODY_CHARS] + "…"
    code = row["status_code"]
    headers = [(str(k), str(v)) for k, v in row["request_headers"] or []]
    # The bytes POSTed are rebuilt from the stored event exactly as the delivery built them.
    sent = body_bytes(event["payload_json"], int(row["attempt"]), row["url"])
    lowered = {k.lower(): v for k, v in headers}
    signed = (
        verify(public_key, sent, lowered)
        if public_key and "telnyx-signature-ed25519" in lowered and "telnyx-timestamp" in lowered
        else None
    )
    return {
        # Attempts are keyed by their event and number (they have no id of their own).
        "id": f"{row['event_id']}-{row['attempt']}",
        "attempt": row["attempt"],
        "url": row["url"],
        "status_code": code,
        "ok": code is not None and 200 <= code < 300,
        "latency_ms": None if row["latency_ms"] is None else round(float(row["latency_ms"]), 1),
        "error": row["error"],
        "response_body": body,
        "started_at": iso(row["started_at"]),
        "finished_at": iso(row["finished_at"]),
        "request_headers": headers,
        "timestamp": lowered.get("telnyx-timestamp"),
        "signature": lowered.get("telnyx-signature-ed25519"),
        "signed_body": sent.decode("utf-8", "replace"),
        "signature_ok": signed,
    }


def delivery(
    event: Mapping[str, Any], attempts: Sequence[RowMapping], public_key: str | None = None
) -> dict[str, Any]:
    """One webhook event of a message with every attempt to deliver it."""
    status = event["status"] if event["status"] in ("delivered", "failed") else "pending"
    return {
        "id": event["id"],
        "event_type": event["event_type"],
        "status": status,
        "attempts": [_attempt_view(a, event, public_key) for a in attempts],
        "urls": list(event["urls"] or []),
        "delivered_to": event["delivered_to"],
        "occurred_at": iso(event["occurred_at"]),
        "finished_at": iso(event["finished_at"]),
        "body": webhook_view(event),
    }


async def detail(
    uow: UnitOfWork, org_id: str, message_id: str, public_key: str | None = None
) -> Detail | None:
    """A message as the API returns it, with its webhook deliveries; None if not the org's.

    With `public_key` (the organization's), each attempt says whether its signature verifies."""
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
        [delivery(e, attempts.get(e["id"], []), public_key) for e in events],
    )


async def numbers(uow: UnitOfWork, org_id: str) -> list[str]:
    return await repo.owned_numbers(uow, org_id)


async def profiles(uow: UnitOfWork, org_id: str) -> list[dict[str, str]]:
    return [{"id": r["id"], "name": r["name"]} for r in await repo.profiles(uow, org_id)]


async def _summaries(uow: UnitOfWork, org_id: str, rows: list[RowMapping]) -> list[dict[str, Any]]:
    events = _by_message(await repo.events_for_messages(uow, org_id, [r["id"] for r in rows]))
    return [summary(r, events.get(r["id"], [])) for r in rows]


async def search(
    uow: UnitOfWork, org_id: str, query: repo.MessageQuery, limit: int = PAGE_SIZE
) -> Page:
    """A page of the messages matching `query`, newest first."""
    cursor = utcnow()
    rows = await repo.search_messages(uow, org_id, query, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    next_before = cursor_of(_wire(rows[-1])) if more else None
    return Page(await _summaries(uow, org_id, rows), next_before, cursor)


async def conversation(
    uow: UnitOfWork,
    org_id: str,
    ours: str,
    handset: str,
    before: tuple[datetime, str] | None = None,
    limit: int = CONVERSATION_PAGE,
) -> Page:
    """A page of one conversation, newest first (the page shows it oldest first)."""
    cursor = utcnow()
    rows = await repo.conversation(uow, org_id, ours, handset, limit + 1, before)
    more = len(rows) > limit
    rows = rows[:limit]
    next_before = cursor_of(_wire(rows[-1])) if more else None
    return Page(await _summaries(uow, org_id, rows), next_before, cursor)


def _wire(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {"received_at": iso(row["received_at"]), "id": row["id"]}


CONVERSATION_WINDOW = 1000


async def conversations(uow: UnitOfWork, org_id: str) -> list[dict[str, Any]]:
    """The conversations of the organization's newest `CONVERSATION_WINDOW` messages, the most
    recently active first: each pair of our number and a handset with its last message and how
    many of those messages it holds."""
    rows = await repo.search_messages(uow, org_id, repo.MessageQuery(), CONVERSATION_WINDOW)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        item = summary(row, [])
        key = (item["ours"], item["handset"])
        if key in found:
            found[key]["count"] += 1
        else:  # the newest message of the pair
            found[key] = {"last": item, "count": 1}
    return list(found.values())


@dataclass(frozen=True)
class Watch:
    """What a live stream reports: messages matching `query`, one conversation, or one message."""

    query: repo.MessageQuery | None = None
    conversation: tuple[str, str] | None = None  # (ours, handset)
    message_id: str | None = None

    def keeps(self, item: Mapping[str, Any]) -> bool:
        if self.message_id is not None:
            return bool(item["id"] == self.message_id)
        if self.conversation is not None:
            return (item["ours"], item["handset"]) == self.conversation
        return True


async def changes(uow: UnitOfWork, org_id: str, since: datetime, watch: Watch) -> Feed:
    """The summaries of watched messages that changed since `since` (less `OVERLAP`)."""
    cursor = utcnow()
    ids = sorted(await repo.changed_message_ids(uow, org_id, since - OVERLAP))
    if watch.message_id is not None:
        ids = [i for i in ids if i == watch.message_id]
    elif watch.query is not None:
        ids = sorted(await repo.matching_ids(uow, org_id, ids, watch.query))
    rows = await repo.messages_by_id(uow, org_id, ids, CHANGES_LIMIT)
    items = [s for s in await _summaries(uow, org_id, rows) if watch.keeps(s)]
    return Feed(items, cursor)


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
