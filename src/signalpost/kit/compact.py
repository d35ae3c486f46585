"""Compact storage of ids, times and recurring words on SQLite: `CompactUUID`, `UTCDateTime`,
`CompactWord`.

Every message writes its id, its organization's id and a handful of times into several rows and
indexes (the message, two webhook events, their attempts). As text a UUID takes 36 bytes and a time
26; on SQLite a UUID in its canonical form (lowercase, with dashes: every id this server makes) is
stored as its 16 bytes, and a time as an integer of microseconds since 1970 (8 bytes), which about
halves what a delivered SMS takes on disk. Both order as their text did: UUIDs compare byte by byte
as their lowercase hex did, times by value. Values read back are the same `str` and aware UTC
`datetime` as before. Any other id (not a canonical UUID) stays text, so it still equals only
itself. PostgreSQL keeps its `VARCHAR(36)` and `TIMESTAMP WITH TIME ZONE` as they are.

Migration 0006 converted the rows written before in this form; text found anyway is still read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def uuid_bytes(value: Any) -> Any:
    """The stored form of an id: 16 bytes for a canonical UUID, anything else as it is."""
    if type(value) is str and len(value) == 36 and _CANONICAL.fullmatch(value):
        return bytes.fromhex(value[:8] + value[9:13] + value[14:18] + value[19:23] + value[24:])
    return value


def uuid_str(stored: Any) -> Any:
    """The id of a stored value (16 bytes back to the canonical text; text as it is)."""
    if isinstance(stored, bytes | bytearray | memoryview) and len(stored) == 16:
        h = bytes(stored).hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return stored


WORDS = (
    "pending",
    "delivered",
    "failed",
    "event",
    "bare",
    "message.sent",
    "message.finalized",
    "message.received",
    "SIGNALPOST",
    "SIMULATED MOBILE CARRIER",
    "outbound",
    "inbound",
    "SMS",
    "MMS",
    "long_code",
    "toll_free",
    "short_code",
    "alphanumeric",
    "queued",
    "sending",
    "sent",
    "sending_failed",
    "delivery_failed",
    "delivery_unconfirmed",
    "webhook_delivered",
    "received",
    "GSM-7",
    "UCS-2",
    "Wireless",
    "Wireline",
    "VoIP",
)
_WORD_CHARS = {word: chr(1 + i) for i, word in enumerate(WORDS)}
assert len(WORDS) <= 31  # beyond, a character would be printable text


def word_char(value: Any) -> Any:
    return _WORD_CHARS.get(value, value) if type(value) is str else value


def word_str(stored: Any) -> Any:
    if type(stored) is str and len(stored) == 1 and 0 < ord(stored) <= len(WORDS):
        return WORDS[ord(stored) - 1]
    return stored


class _CompactOnSQLite(TypeDecorator[str]):
    """A text column stored in another form on SQLite: `store` gives the stored form of a value,
    `read` the value of a stored form. Other backends store the text as it is."""

    impl = String
    cache_ok = True
    store: Callable[[Any], Any]
    read: Callable[[Any], Any]

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        return type(self).store if dialect.name == "sqlite" else None

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        return type(self).read if dialect.name == "sqlite" else None


class CompactUUID(_CompactOnSQLite):
    """An id column (`VARCHAR(n)`): a canonical UUID is stored as 16 bytes on SQLite."""

    cache_ok = True
    store = staticmethod(uuid_bytes)
    read = staticmethod(uuid_str)


class CompactWord(_CompactOnSQLite):
    """A text column of a few recurring words (a message's direction and statuses, a webhook
    event's type and status, ...): on SQLite a word of `WORDS` is stored as one control
    character, any other text as it is.

    `WORDS` is shared by every such column and never changes (stored characters are read with
    it, and migration 0006 wrote them with it); it holds 31 words, the control characters 1 to
    31, so any other text is stored as it is.
    """

    cache_ok = True
    store = staticmethod(word_char)
    read = staticmethod(word_str)


SQL_TEXT = "signalpost_stored_text"


def sqlite_stored_text(stored: Any) -> Any:
    """`signalpost_stored_text(column)` on SQLite: the text of a `CompactUUID` or `CompactWord`
    column, as a client wrote it (for searching it)."""
    return word_str(uuid_str(stored))


class stored_text(FunctionElement[str]):
    """The text of a `CompactUUID` or `CompactWord` column, in SQL (`.contains(...)` on it)."""

    type = Text()
    inherit_cache = True


@compiles(stored_text)
def _stored_text_default(element: stored_text, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(stored_text, "sqlite")
def _stored_text_sqlite(element: stored_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{SQL_TEXT}({compiler.process(element.clauses, **kw)})"


def micros(value: datetime) -> int:
    """Microseconds since 1970 (UTC) of a datetime; a naive one is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def from_text(value: str) -> datetime:
    """A time stored as text (`YYYY-MM-DD HH:MM:SS[.ffffff][offset]`), as written before 0006."""
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend; on SQLite stored as integer microseconds
    since 1970 (see the module's docstring)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # One entry of memory (replaced whole, so threads never see half of one): a batch binds
        # the same `now` object into every one of its rows.
        last: list[tuple[datetime | None, int]] = [(None, 0)]

        def process(value: datetime | None) -> int | None:
            if value is None:
                return None
            memo = last[0]
            if value is memo[0]:
                return memo[1]
            stored = micros(value)
            last[0] = (value, stored)
            return stored

        return process

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        # The rows of a batch share their times (written from one `now`): one entry of memory.
        last: list[tuple[int | str | None, datetime | None]] = [(None, None)]

        def process(value: int | str | datetime | None) -> datetime | None:
            if value is None:
                return None
            if isinstance(value, datetime):
                return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
            memo = last[0]
            if value == memo[0]:
                return memo[1]
            parsed = from_text(value) if isinstance(value, str) else from_micros(int(value))
            last[0] = (value, parsed)
            return parsed

        return process
