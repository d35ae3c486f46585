"""Wire shapes of `GET /webhook_deliveries` (PY `types/webhook_delivery.py`, `types/attempt.py`).

One delivery is one webhook event with all its attempts (across the primary, failover and profile
URLs), most recent attempt first. The delivery id is the event id, i.e. the `data.id` a receiver
got in the body. `status` is `delivered` or `failed` once finished and null while attempts are
still to come. An attempt carries `http.request` (URL and headers as sent), `http.response` when
the receiver answered, `errors: [75499]` when it failed, and two fields of our own: `error` (why no
usable answer came: timeout, connection refused, ...) and `latency_ms`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from fastapi import Query
from sqlalchemy.engine import RowMapping

from signalpost.kit.clock import iso, parse_datetime
from signalpost.kit.errors import bad_parameter
from signalpost.webhooks.repository import DeliveryQuery
from signalpost.webhooks.service import ATTEMPT_FAILED_CODE

STATUSES = ("delivered", "failed")


def attempt_view(row: RowMapping) -> dict[str, Any]:
    code = row["status_code"]
    ok = code is not None and 200 <= code < 300
    http: dict[str, Any] = {
        "request": {"url": row["url"], "headers": list(row["request_headers"] or [])}
    }
    if code is not None:
        http["response"] = {
            "status": code,
            "headers": list(row["response_headers"] or []),
            "body": row["response_body"] or "",
        }
    out: dict[str, Any] = {
        "status": "delivered" if ok else "failed",
        "started_at": iso(row["started_at"]),
        "finished_at": iso(row["finished_at"]),
        "http": http,
    }
    if not ok:
        out["errors"] = [ATTEMPT_FAILED_CODE]
    if row["error"]:
        out["error"] = row["error"]
    out["latency_ms"] = row["latency_ms"]
    return out


def webhook_view(event: Mapping[str, Any]) -> dict[str, Any]:
    """The `webhook` component: the event as delivered (a bare payload is shown as an event)."""
    if event["envelope"] == "event":
        return dict(event["payload"])
    return {
        "record_type": "event",
        "id": event["id"],
        "event_type": event["event_type"],
        "occurred_at": iso(event["occurred_at"]),
        "payload": dict(event["payload"]),
    }


def delivery_view(event: Mapping[str, Any], attempts: Sequence[RowMapping]) -> dict[str, Any]:
    status = event["status"] if event["status"] in STATUSES else None
    return {
        "id": event["id"],
        "record_type": "webhook_delivery",
        "user_id": event["organization_id"],
        "status": status,
        "webhook": webhook_view(event),
        "started_at": iso(event["started_at"]),
        "finished_at": iso(event["finished_at"]) if status else None,
        "attempts": [attempt_view(a) for a in attempts],
    }


def _when(name: str, raw: str | None) -> Any:
    if raw is None or raw == "":
        return None
    try:
        return parse_datetime(raw)
    except ValueError:
        raise bad_parameter(name, f"{name} must be an ISO 8601 date-time.") from None


def delivery_filters(
    status_eq: Annotated[str | None, Query(alias="filter[status][eq]")] = None,
    status_plain: Annotated[str | None, Query(alias="filter[status]")] = None,
    event_type: Annotated[str | None, Query(alias="filter[event_type]")] = None,
    webhook_contains: Annotated[str | None, Query(alias="filter[webhook][contains]")] = None,
    attempts_contains: Annotated[str | None, Query(alias="filter[attempts][contains]")] = None,
    started_gte: Annotated[str | None, Query(alias="filter[started_at][gte]")] = None,
    started_lte: Annotated[str | None, Query(alias="filter[started_at][lte]")] = None,
    finished_gte: Annotated[str | None, Query(alias="filter[finished_at][gte]")] = None,
    finished_lte: Annotated[str | None, Query(alias="filter[finished_at][lte]")] = None,
) -> DeliveryQuery:
    """FastAPI dependency: the deliveries filters (deepObject `filter[...]` keys), validated."""
    name, status = (
        ("filter[status][eq]", status_eq)
        if status_eq is not None
        else ("filter[status]", status_plain)
    )
    if status is not None and status != "" and status not in STATUSES:
        raise bad_parameter(name, f"{name} must be one of: delivered, failed.")
    types = tuple(t.strip() for t in (event_type or "").split(",") if t.strip())
    return DeliveryQuery(
        status=status or None,
        event_types=types,
        webhook_contains=webhook_contains or None,
        attempts_contains=attempts_contains or None,
        started_gte=_when("filter[started_at][gte]", started_gte),
        started_lte=_when("filter[started_at][lte]", started_lte),
        finished_gte=_when("filter[finished_at][gte]", finished_gte),
        finished_lte=_when("filter[finished_at][lte]", finished_lte),
    )
