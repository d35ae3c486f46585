"""Rendering for the web inbox: the template environment, its filters, the response headers of
every page, and the list filters read from a query string."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from signalpost.inbox import service
from signalpost.inbox.repository import MessageQuery
from signalpost.kit import phone
from signalpost.kit.clock import parse_datetime
from signalpost.kit.errors import ApiError, bad_parameter

HERE = Path(__file__).parent
SECURITY_HEADERS = {
    # Media previews load from wherever the message's media live (http or https).
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        "img-src 'self' data: http: https:; media-src http: https:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

DIRECTIONS = ("inbound", "outbound")
# The statuses a message shows, in lifecycle order; "failed" stands for any failure.
STATUSES = (
    "queued",
    "sending",
    "sent",
    "delivered",
    "read",
    "received",
    "failed",
    "delivery_failed",
    "delivery_unconfirmed",
    "sending_failed",
    "expired",
)
MAX_SEARCH = 200


def _clock(value: str | None) -> str:
    """`2024-05-01T12:03:04.567Z` → `12:03:04` (the full time goes in a title attribute)."""
    return value[11:19] if value else ""


def _when(value: str | None) -> str:
    """`2024-05-01T12:03:04.567Z` → `2024-05-01 12:03:04.567`."""
    return value.replace("T", " ").rstrip("Z") if value else ""


def _size(value: int | None) -> str:
    if value is None:
        return ""
    if value < 1024:
        return f"{value} B"
    if value < 1024 * 1024:
        return f"{value / 1024:.1f} kB"
    return f"{value / 1024 / 1024:.1f} MB"


templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters.update(json=service.pretty_json, clock=_clock, when=_when, size=_size)


def render(name: str, **values: Any) -> str:
    return templates.get_template(name).render(**values)


def page(name: str, status: int = 200, **values: Any) -> HTMLResponse:
    return HTMLResponse(render(name, **values), status_code=status, headers=SECURITY_HEADERS)


# --- the list's filters ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """The list's filters as typed into the form (echoed back into it and into links)."""

    q: str = ""
    number: str = ""
    direction: str = ""
    status: str = ""
    profile: str = ""
    since: str = ""
    until: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> Filters:
        return cls(**{f.name: (params.get(f.name) or "").strip() for f in fields(cls)})

    @property
    def active(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def link(self, **extra: str) -> str:
        """A query string of these filters plus `extra` (empty values left out)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(extra)
        text = urlencode({k: v for k, v in values.items() if v})
        return f"?{text}" if text else ""


def _day_or_time(name: str, raw: str, end: bool) -> datetime | None:
    if not raw:
        return None
    try:
        if len(raw) == 10:  # a date from <input type="date">: the whole day, in UTC
            start = parse_datetime(raw + "T00:00:00Z")
            return start + timedelta(days=1) if end else start
        return parse_datetime(raw)
    except ValueError:
        raise bad_parameter(name, f"{name} must be a date (YYYY-MM-DD) or a date-time.") from None


def to_query(f: Filters, before: str = "") -> MessageQuery:
    """The repository's query for these filters; `ApiError` 400 (10015) names a bad one."""
    if len(f.q) > MAX_SEARCH:
        raise bad_parameter("q", f"q must be at most {MAX_SEARCH} characters.")
    if f.number and not (phone.is_e164(f.number) or phone.SHORT_CODE.match(f.number)):
        raise bad_parameter("number", "number must be a +E.164 phone number or a short code.")
    if f.direction and f.direction not in DIRECTIONS:
        raise bad_parameter("direction", "direction must be inbound or outbound.")
    if f.status and f.status not in STATUSES:
        raise bad_parameter("status", f"status must be one of: {', '.join(STATUSES)}.")
    cursor = None
    if before:
        try:
            cursor = service.parse_before(before)
        except ValueError:
            raise bad_parameter("before", "before must be a cursor from an 'Older' link.") from None
    return MessageQuery(
        text=f.q or None,
        number=f.number or None,
        direction=f.direction or None,
        status=f.status or None,
        profile_id=f.profile or None,
        since=_day_or_time("since", f.since, end=False),
        until=_day_or_time("until", f.until, end=True),
        before=cursor,
    )


def error_text(err: ApiError) -> str:
    return err.detail or err.title
