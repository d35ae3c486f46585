"""JSON stored compressed (`PackedJSON`): webhook payloads and headers, several per message.

A value is stored as one tag byte and raw DEFLATE of its compact JSON, primed with a preset
dictionary of what such values repeat (field names, event types, header names, common values), so
that only what differs from one event to the next takes room: a message event's ~1.2 KB of JSON
becomes ~170 bytes. Values written before (JSON text) are read as they are. This is done on SQLite,
where the sandbox keeps everything in one file; PostgreSQL stores the JSON text.

The dictionary belongs to tag 1 and must never change: values written with it are read with it.
A new dictionary takes a new tag, and readers keep every older one.

Tag 2 (`Primed`): the dictionary followed by strings of the value's own row that the value repeats
(a webhook event's ids), which then take a few bytes instead of twenty each; reading such a value
takes the same strings again (`unpack_text(stored, context)`), so it is read by the code that
knows its row, never by the column type alone.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

from signalpost.kit.clock import iso
from signalpost.kit.compact import from_micros, uuid_str, word_str
from signalpost.kit.jsonio import dumps, loads

_TAG_V1 = 1
_DICTIONARY_V1 = (
    b'[["Content-Type","application/json"],["Accept","*/*"],["User-Agent","signalpost-webhooks/'
    b'0.1.0"],["telnyx-signature-ed25519",""],["telnyx-timestamp","17"]][["content-length","2"],'
    b'["content-type","text/plain; charset=utf-8"],["date","Sat, 05 Dec 2026 07:56:20 GMT"],'
    b'["server","uvicorn"]]{"record_type":"event","id":"01a24534-","event_type":"message.received",'
    b'"occurred_at":"2026-12-05T07:56:20.134Z","payload":{"record_type":"message","direction":"inbo'
    b'und","id":"01a24534-","type":"MMS","messaging_profile_id":"01a24534-","organization_id":"01a2'
    b'4534-","from":{"phone_number":"+1","carrier":"","line_type":"Wireless","status":"webhook_deli'
    b'vered"},"to":[{"phone_number":"+1","carrier":"T-MOBILE USA, INC.","line_type":"Wireless","sta'
    b'tus":"delivery_failed"}],"cc":[],"text":"","subject":null,"media":[{"url":"https://","content'
    b'_type":"image/jpeg","sha256":null,"size":null}],"webhook_url":null,"webhook_failover_url":nul'
    b'l,"encoding":"UCS-2","parts":1,"num_chars":1,"smart_encoding_applied":false,"tags":[],"cost":'
    b'null,"cost_breakdown":null,"tcr_campaign_id":null,"tcr_campaign_billable":false,"tcr_campaign'
    b'_registered":null,"received_at":"2026-12-05T07:56:19.958Z","sent_at":"2026-12-05T07:56:20.12'
    b'9Z","completed_at":null,"valid_until":null,"errors":[{"code":"4000","title":"","detail":""}],'
    b'"wait_seconds":0.0}}{"record_type":"event","id":"01a24534-","event_type":"message.sent","occu'
    b'rred_at":"2026-12-05T07:56:20.134Z","payload":{"record_type":"message","direction":"outbound",'
    b'"id":"01a24534-","type":"SMS","messaging_profile_id":"01a24534-","organization_id":"01a24534-'
    b'","from":{"phone_number":"+1","carrier":"SIGNALPOST","line_type":"VoIP"},"to":[{"phone_number'
    b'":"+1","carrier":"SIMULATED MOBILE CARRIER","line_type":"Wireless","status":"sent"}],"cc":[],'
    b'"text":"","subject":null,"media":[],"webhook_url":null,"webhook_failover_url":null,"encoding"'
    b':"GSM-7","parts":1,"num_chars":1,"smart_encoding_applied":false,"tags":[],"cost":{"amount":"'
    b'0.0040","currency":"USD"},"cost_breakdown":{"rate":{"amount":"0.0040","currency":"USD"},"car'
    b'rier_fee":{"amount":"0.0030","currency":"USD"}},"tcr_campaign_id":null,"tcr_campaign_billabl'
    b'e":false,"tcr_campaign_registered":null,"received_at":"2026-12-05T07:56:19.958Z","sent_at":"2'
    b'026-12-05T07:56:20.129Z","completed_at":"2026-12-05T07:56:20.129Z","valid_until":null,"error'
    b's":[],"wait_seconds":0.0}}'
)


_TAG_V2 = 2


@dataclass(frozen=True, slots=True)
class Primed:
    """A value to store with its row's `context` (tag 2; see the module's docstring)."""

    value: Any
    context: bytes


def pack(value: Any, context: bytes | None = None) -> bytes:
    """The stored form of a JSON value (or of JSON text already encoded); with `context`, tag 2."""
    raw = value.encode() if isinstance(value, str) else dumps(value)
    tag, primer = (
        (_TAG_V1, _DICTIONARY_V1) if context is None else (_TAG_V2, _DICTIONARY_V1 + context)
    )
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, primer)
    return bytes((tag,)) + deflate.compress(raw) + deflate.flush()


def unpack_text(stored: bytes | bytearray | memoryview | str, context: bytes | None = None) -> str:
    """The JSON text of a stored value (`context`: the strings it was packed with, for tag 2)."""
    if isinstance(stored, str):
        return stored
    data = bytes(stored)
    if data[:1] == bytes((_TAG_V1,)):
        primer = _DICTIONARY_V1
    elif data[:1] == bytes((_TAG_V2,)):
        if context is None:
            raise ValueError("a value packed with its row's context is read with that context")
        primer = _DICTIONARY_V1 + context
    else:
        return data.decode()
    inflate = zlib.decompressobj(-15, primer)
    return (inflate.decompress(data[1:]) + inflate.flush()).decode()


def unpack(stored: bytes | bytearray | memoryview | str) -> Any:
    return loads(unpack_text(stored))


class PackedJSON(TypeDecorator[Any]):
    """A JSON value stored compressed on SQLite (see the module's docstring); plain JSON elsewhere.

    On SQLite the column keeps its declared type JSON (a name only: SQLite stores the bytes as
    given), so no table is rebuilt, and `packed_text(column)` reads its text in SQL (a function
    registered on each connection, `kit.db`). PostgreSQL keeps JSON text (compressed by TOAST where
    large), searchable as it is.
    """

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any]:
        if dialect.name == "sqlite":

            def process(value: Any) -> Any:
                if isinstance(value, Primed):
                    return pack(value.value, value.context)
                return None if value is None else pack(value)

        else:

            def process(value: Any) -> Any:
                if isinstance(value, Primed):
                    value = value.value
                if value is None or isinstance(value, str):
                    return value
                return dumps(value).decode()

        return process

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any]:
        def process(value: Any) -> Any:
            if value is None or not isinstance(value, str | bytes | bytearray | memoryview):
                return value  # a driver that decoded the JSON already
            return unpack(value)

        return process


class PackedJSONText(PackedJSON):
    """Reads a `PackedJSON` column as its JSON text (`type_coerce(column, PackedJSONText())`)."""

    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any]:
        def process(value: Any) -> Any:
            if value is None or isinstance(value, str | bytes | bytearray | memoryview):
                return None if value is None else unpack_text(value)
            return dumps(value).decode()

        return process


def _as_stored(value: Any) -> Any:
    return value


class PackedStored(PackedJSON):
    """Reads a `PackedJSON` column as stored (bytes on SQLite), for `unpack_text` with a context."""

    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any]:
        return _as_stored


def stored_json_text(stored: Any, context: bytes | None = None) -> str:
    """The JSON text of a value read with `PackedStored` (a driver may have decoded it already)."""
    if isinstance(stored, str | bytes | bytearray | memoryview):
        return unpack_text(stored, context)
    return dumps(stored).decode()


SQL_FUNCTION = "signalpost_unpack"


def context_text(value: Any) -> str:
    """A value's part of a context: ids and words as their text, times (`datetime`, or integer
    microseconds as SQLite stores them) in the wire's form, nothing for NULL."""
    if value is None:
        return ""
    if isinstance(value, int):
        value = from_micros(value)
    if isinstance(value, datetime):
        return iso(value) or ""
    return str(word_str(uuid_str(value)))


def sqlite_unpack(stored: bytes | str | None, *context: Any) -> str | None:
    """`signalpost_unpack(column[, context columns...])` on SQLite: the JSON text of a stored
    value; the context columns, as stored, give a tag 2 value its context back."""
    if stored is None:
        return None
    return unpack_text(stored, "".join(context_text(c) for c in context).encode())


class packed_text(FunctionElement[str]):
    """The JSON text of a `PackedJSON` column, in SQL (for searching it): `packed_text(column)`,
    or `packed_text(column, *context columns)` for values packed with their row's context."""

    type = Text()
    inherit_cache = True


@compiles(packed_text)
def _packed_text_default(element: packed_text, compiler: SQLCompiler, **kw: Any) -> str:
    column = next(iter(element.clauses))
    return f"CAST({compiler.process(column, **kw)} AS TEXT)"


@compiles(packed_text, "sqlite")
def _packed_text_sqlite(element: packed_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{SQL_FUNCTION}({compiler.process(element.clauses, **kw)})"
