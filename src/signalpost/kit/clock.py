"""Time helpers: every timestamp is timezone-aware UTC; the wire form is RFC 3339 with milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


# The last value `iso` formatted (replaced whole, so threads never see half of one): the messages
# of a batch share their timestamps, and each payload formats several.
_last_iso: tuple[datetime | None, str] = (None, "")


def iso(value: datetime | None) -> str | None:
    """`2019-01-23T18:10:02.574Z`, the form Telnyx uses on the wire."""
    global _last_iso
    if value is None:
        return None
    memo = _last_iso
    if value == memo[0]:
        return memo[1]
    if value.tzinfo is UTC:  # the usual case: the offset is cut off the text
        text = value.isoformat(timespec="milliseconds")[:-6] + "Z"
    else:
        naive = value.astimezone(UTC) if value.tzinfo and value.utcoffset() else value
        text = naive.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
    _last_iso = (value, text)
    return text


def parse_datetime(value: str) -> datetime:
    """Parse an ISO-8601 timestamp; a naive one is taken as UTC. ValueError if it is not one, or
    if it is one that has no UTC equivalent (year 1 at +14:00, year 9999 at -14:00)."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value!r} is outside the range of UTC date-times") from None
