"""Webhook events: choosing URLs, storing an event with its delivery job, signing and POSTing.

Delivery rules (contract §9.1, §9.4):
- URLs are tried in order: the message's `webhook_url`, its `webhook_failover_url`, then the
  messaging profile's two URLs when `use_profile_webhooks` is on (`resolve_urls`).
- Each URL gets `settings.webhook_attempts` attempts (default 3). After try `k` on a URL failed, the
  next try on that URL waits `webhook_retry_base * 2**(k-1)` seconds; moving on to the next URL is
  immediate. After the last attempt on the last URL the event is `failed`.
- `meta.attempt` in the body counts attempts across all URLs (1, 2, 3 on the primary URL, then 4 on
  the failover URL, ...); `meta.delivered_to` is the URL of that attempt. The event id (`data.id`)
  is the same on every attempt, so receivers can de-duplicate.
- A 2xx answer within `settings.webhook_timeout` is success; anything else (another status, a
  timeout, a connection error) is a failed attempt. Each attempt is one `webhook_attempts` row.
- With the outbound guard on (`SIGNALPOST_OUTBOUND_ALLOW_PRIVATE=false`, kit.netguard) a URL whose
  host is, or resolves at the time of the attempt to, a refused address fails its attempt with
  `blocked by policy: ...` and nothing is sent; any other connection failure is `connection
  failed: could not connect`, whatever the reason. Redirects are never followed.
- Delivery is at-least-once: a worker that dies mid-POST leaves its job to be run again, which POSTs
  the same attempt again (same event id, same `meta.attempt`); the attempt is recorded once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.engine import RowMapping

from signalpost import __version__
from signalpost.kit import ids
from signalpost.kit.clock import iso, utcnow
from signalpost.kit.db import UnitOfWork
from signalpost.kit.httpclient import ConnectError, HttpClient
from signalpost.kit.jsonio import dumps
from signalpost.kit.netguard import Blocked
from signalpost.kit.packed import Primed
from signalpost.kit.queue import enqueue_many
from signalpost.kit.signing import EXTERNAL_SEED, Signer
from signalpost.models import webhook_events
from signalpost.webhooks import repository as repo
from signalpost.webhooks.repository import AttemptRecord, DeliveryQuery

log = logging.getLogger("signalpost.webhooks")

# A delivery job: `{"event_ids": [...]}`, the events one transaction emitted (at most
# `EVENTS_PER_JOB`); once `{"event_id": ...}`, which is still understood.
JOB_KIND = "webhook.deliver"
EVENTS_PER_JOB = 200
# Events that open a message's life: no event of the same message comes before them, so their
# delivery never waits for another's.
OPENING_EVENTS = frozenset({"message.sent", "message.received"})
USER_AGENT = f"signalpost-webhooks/{__version__}"
RESPONSE_BODY_LIMIT = 2048  # bytes of the receiver's answer kept per attempt
RESPONSE_HEADERS_LIMIT = 50
# The one webhook-delivery error code Telnyx documents on a failed attempt (`attempts[].errors`).
ATTEMPT_FAILED_CODE = 75499

Envelope = Literal["event", "bare"]


# --- choosing URLs and emitting -----------------------------------------------------------------


def resolve_urls(
    webhook_url: str | None,
    webhook_failover_url: str | None,
    use_profile_webhooks: bool,
    profile: Mapping[Any, Any] | None,
) -> list[str]:
    """The §9.1 hierarchy as an ordered list of distinct non-empty URLs.

    Message URL, message failover URL, then (if `use_profile_webhooks` and a profile is given) the
    profile's `webhook_url` and `webhook_failover_url`.
    """
    candidates: list[object] = [webhook_url, webhook_failover_url]
    if use_profile_webhooks and profile is not None:
        candidates += [profile.get("webhook_url"), profile.get("webhook_failover_url")]
    return _distinct(candidates)


def event_data(
    event_id: str,
    event_type: str,
    payload: Mapping[str, Any],
    occurred_at: datetime,
    envelope: Envelope,
) -> dict[str, Any]:
    """The `data` object of the body: the §9.2 event envelope, or the payload itself ("bare")."""
    if envelope == "bare":
        return dict(payload)
    return {
        "record_type": "event",
        "id": event_id,
        "event_type": event_type,
        "occurred_at": iso(occurred_at),
        "payload": dict(payload),
    }


@dataclass(frozen=True)
class EventSpec:
    """One event for `emit_many`; the keyword arguments of `emit`."""

    organization_id: str
    event_type: str
    payload: Mapping[str, Any]
    urls: Sequence[str]
    message_id: str | None = None
    envelope: Envelope = "event"
    occurred_at: datetime | None = None


async def emit(
    uow: UnitOfWork,
    *,
    organization_id: str,
    event_type: str,
    payload: Mapping[str, Any],
    urls: Sequence[str],
    message_id: str | None = None,
    envelope: Envelope = "event",
    occurred_at: datetime | None = None,
) -> str | None:
    """Store a webhook event and enqueue its delivery in the caller's transaction.

    Returns the event id, or None (and stores nothing) when `urls` is empty. Events of one message
    reach a URL in the order they were emitted (`message.sent` before `message.finalized`), each
    waiting until the one before it is delivered or has failed (`webhooks.jobs`).
    """
    spec = EventSpec(organization_id, event_type, payload, urls, message_id, envelope, occurred_at)
    return (await emit_many(uow, [spec]))[0]


async def emit_many(
    uow: UnitOfWork,
    specs: Sequence[EventSpec],
    *,
    defer: bool = False,
    group_key: str | None = None,
) -> list[str | None]:
    """`emit` for several events: their rows in one statement and their jobs in another.

    Returns each event's id (None where it had no URL), in order. `defer`: the rows are inserted
    when the unit of work ends (`UnitOfWork.defer_insert`), with the other rows deferred in it.
    `group_key`: the queue group of the delivery jobs; a job of a group is not run before the
    group's earlier jobs are done (events caused by earlier ones wait for them without asking).
    """
    now = utcnow()
    rows: list[dict[str, Any]] = []
    out: list[str | None] = []
    for spec, event_id in zip(specs, ids.new_uuids(len(specs)), strict=True):
        row = _event_row(spec, event_id, now)
        if row is not None:
            rows.append(row)
        out.append(event_id if row is not None else None)
    if not rows:
        return out
    if defer:
        uow.defer_insert(webhook_events, rows)
    else:
        await repo.insert_events(uow, rows)
    # The events of one transaction share delivery jobs: a job per `EVENTS_PER_JOB` of them.
    await enqueue_many(
        uow,
        [
            {
                "kind": JOB_KIND,
                "payload": {"event_ids": [r["id"] for r in rows[i : i + EVENTS_PER_JOB]]},
                "max_attempts": 10,
                "group_key": group_key,
            }
            for i in range(0, len(rows), EVENTS_PER_JOB)
        ],
        defer=defer,
    )
    return out


def _event_row(spec: EventSpec, event_id: str, now: datetime) -> dict[str, Any] | None:
    """The `webhook_events` row of an event, None when it has no URL."""
    if spec.envelope not in ("event", "bare"):
        raise ValueError(f"unknown webhook envelope {spec.envelope!r}")
    clean = _distinct(spec.urls)
    if not clean:
        return None
    occurred = spec.occurred_at or now
    # Stored as the database layer serializes JSON (orjson, like `jsonio.dumps`): what is
    # read back for each attempt is exactly what the body will say.
    data = event_data(event_id, spec.event_type, spec.payload, occurred, spec.envelope)
    return {
        "id": event_id,
        "organization_id": spec.organization_id,
        "event_type": spec.event_type,
        "message_id": spec.message_id,
        # Packed with the row's ids, which the event repeats (kit.packed, tag 2).
        "payload": Primed(
            data,
            repo.payload_context(
                spec.event_type, occurred, spec.organization_id, spec.message_id, event_id
            ),
        ),
        "envelope": spec.envelope,
        "urls": clean,
        "status": "pending",
        "attempts": 0,
        "occurred_at": occurred,
    }


def _distinct(urls: Sequence[object]) -> list[str]:
    out: list[str] = []
    for url in urls:
        clean = url.strip() if isinstance(url, str) else ""
        if clean and clean not in out:
            out.append(clean)
    return out


# --- the delivery plan (pure) -------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryConfig:
    timeout: float
    attempts_per_url: int
    retry_base: float
    user_agent: str = USER_AGENT
    # The seed of the key in the settings (`signing_key`), for organizations stored with
    # `EXTERNAL_SEED`; kept out of reprs.
    external_seed: str | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Any) -> DeliveryConfig:
        pair = settings.signing_key_pair
        return cls(
            timeout=float(settings.webhook_timeout),
            attempts_per_url=int(settings.webhook_attempts),
            retry_base=float(settings.webhook_retry_base),
            external_seed=pair.seed_b64 if pair is not None else None,
        )

    def seed(self, stored: str) -> str:
        """The seed to sign with for an organization's stored seed."""
        if stored != EXTERNAL_SEED:
            return stored
        if self.external_seed is None:
            raise RuntimeError("the signing key is configured outside the database but not given")
        return self.external_seed


@dataclass(frozen=True)
class Step:
    """The next attempt: its number across all URLs (1-based), the URL and the try on that URL."""

    attempt: int
    url: str
    url_index: int
    try_on_url: int
    final: bool  # no attempt follows this one if it fails


def next_step(attempts_done: int, urls: Sequence[str], attempts_per_url: int) -> Step | None:
    """What attempt comes after `attempts_done` recorded ones, or None when all are used up."""
    per_url = max(1, attempts_per_url)
    url_index, done_on_url = divmod(attempts_done, per_url)
    if url_index >= len(urls):
        return None
    attempt = attempts_done + 1
    return Step(
        attempt=attempt,
        url=urls[url_index],
        url_index=url_index,
        try_on_url=done_on_url + 1,
        final=attempt >= len(urls) * per_url,
    )


def delay_after(attempt: int, attempts_per_url: int, retry_base: float) -> float:
    """Seconds to wait after failed attempt number `attempt` before the next one.

    `retry_base * 2**(k-1)` after try `k` on a URL; nothing when the next attempt goes to the next
    URL (the previous one has had its tries).
    """
    per_url = max(1, attempts_per_url)
    try_on_url = (attempt - 1) % per_url + 1
    if try_on_url >= per_url:
        return 0.0
    return float(retry_base * 2 ** (try_on_url - 1))


def body_bytes(data: Mapping[str, Any] | str, attempt: int, url: str) -> bytes:
    """The exact bytes POSTed (and signed) for one attempt; `data` may be its JSON text already."""
    if isinstance(data, str):
        meta = dumps({"attempt": attempt, "delivered_to": url})
        return b'{"data":' + data.encode() + b',"meta":' + meta + b"}"
    return dumps({"data": data, "meta": {"attempt": attempt, "delivered_to": url}})


def request_headers(signer: Signer, body: bytes, user_agent: str = USER_AGENT) -> dict[str, str]:
    """Headers of one attempt; the signature covers `"<now>|<body>"` (contract §9.4)."""
    return {
        "Content-Type": "application/json",
        "Accept": "*/*",
        "User-Agent": user_agent,
        **signer.headers(body),
    }


# --- one attempt ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttemptResult:
    started_at: datetime
    finished_at: datetime
    latency_ms: float
    status_code: int | None = None
    response_body: str | None = None
    response_headers: list[list[str]] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def post(
    http: HttpClient,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
) -> AttemptResult:
    """POST once; the whole exchange must end within `timeout`. Never raises for delivery failures."""
    started_at = utcnow()
    t0 = time.monotonic()
    status: int | None = None
    resp_headers: list[list[str]] | None = None
    received = b""
    error: str | None = None
    try:
        async with asyncio.timeout(timeout):
            response = await http.post(url, body, headers, max_body=RESPONSE_BODY_LIMIT)
        status = response.status
        resp_headers = [[k, v] for k, v in response.headers[:RESPONSE_HEADERS_LIMIT]]
        received = response.body
    except TimeoutError:
        error = f"timeout: no response within {timeout:g} s"
    except Blocked as exc:
        error = f"blocked by policy: {exc.reason}"
    except ConnectError as exc:
        error = f"connection failed: {exc}"
    except Exception as exc:  # any other way the request could not be made is a failed attempt
        error = f"{type(exc).__name__}: {exc}"
    latency_ms = round((time.monotonic() - t0) * 1000, 3)
    text = bytes(received[:RESPONSE_BODY_LIMIT]).decode("utf-8", errors="replace")
    return AttemptResult(
        started_at=started_at,
        finished_at=utcnow(),
        latency_ms=latency_ms,
        status_code=status,
        response_body=text if status is not None else None,
        response_headers=resp_headers,
        error=error,
    )


def _log_failed_attempt(event_id: str, step: Step, result: AttemptResult) -> None:
    outcome = f"HTTP {result.status_code}" if result.status_code else (result.error or "no answer")
    fields = {
        "event_id": event_id,
        "url": step.url,
        "attempt": step.attempt,
        "status": result.status_code,
        "error": result.error,
    }
    if step.final:
        log.warning(
            "webhook %s failed for good: attempt %d to %s: %s (no URL or attempt left)",
            event_id,
            step.attempt,
            step.url,
            outcome,
            extra=fields,
        )
    else:
        log.info(
            "webhook %s attempt %d to %s failed: %s",
            event_id,
            step.attempt,
            step.url,
            outcome,
            extra=fields,
        )


def stored_url(url: str, first: bool) -> str:
    """An attempt's URL as stored: empty for the event's first URL (read back through
    `repository.ATTEMPT_URL`), which most attempts go to."""
    return "" if first else url


def attempt_record(
    event_id: str,
    step: Step,
    result: AttemptResult,
    sent_headers: Mapping[str, str],
) -> AttemptRecord:
    """The attempt's row and the event's new state, for `record_attempts`."""
    values: dict[str, Any] = {}
    if not result.ok:
        _log_failed_attempt(event_id, step, result)
    if step.attempt == 1:
        values["started_at"] = result.started_at
    if result.ok:
        values.update(status="delivered", finished_at=result.finished_at)
    elif step.final:
        values.update(status="failed", finished_at=result.finished_at)
    return AttemptRecord(
        event_id=event_id,
        attempt={
            "url": stored_url(step.url, step.url_index == 0),
            "attempt": step.attempt,
            "status_code": result.status_code,
            "latency_ms": result.latency_ms,
            "response_body": result.response_body,
            "error": result.error,
            "request_headers": [[k, v] for k, v in sent_headers.items()],
            "response_headers": result.response_headers,
            "started_at": result.started_at,
            "finished_at": result.finished_at,
        },
        event_values=values,
    )


async def record_attempts(uow: UnitOfWork, records: Sequence[AttemptRecord]) -> set[str]:
    """Store several events' attempts; the ids of the events whose attempt was not already recorded."""
    return await repo.record_attempts(uow, records)


async def delivery_states(uow: UnitOfWork, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    return await repo.delivery_states(uow, event_ids)


async def pending_events_of_messages(
    uow: UnitOfWork, message_ids: Sequence[str]
) -> list[RowMapping]:
    return await repo.pending_events_of_messages(uow, message_ids)


async def give_up(uow: UnitOfWork, event_id: str) -> None:
    """No URL is left to try (e.g. the attempts setting was lowered): the event has failed."""
    await repo.finish_event(uow, event_id, "failed", utcnow())


# --- the deliveries API ---------------------------------------------------------------------------


async def list_deliveries(
    uow: UnitOfWork, organization_id: str, query: DeliveryQuery, *, offset: int, limit: int
) -> tuple[list[tuple[dict[str, Any], list[RowMapping]]], int]:
    rows, total = await repo.list_events(uow, organization_id, query, offset=offset, limit=limit)
    attempts = await repo.attempts_for(uow, [r["id"] for r in rows])
    return [(r, attempts[r["id"]]) for r in rows], total


async def get_delivery(
    uow: UnitOfWork, organization_id: str, delivery_id: str
) -> tuple[dict[str, Any], list[RowMapping]] | None:
    row = await repo.get_event(uow, organization_id, delivery_id)
    if row is None:
        return None
    attempts = await repo.attempts_for(uow, [row["id"]])
    return row, attempts[row["id"]]
