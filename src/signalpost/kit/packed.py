"""JSON stored compressed (`PackedJSON`): webhook payloads and headers, several per message.

A value is stored as one tag byte and raw DEFLATE of its compact JSON, primed with a preset
dictionary of what such values repeat (field names, event types, header names, common values), so
that only what differs from one event to the next takes room: a message event's ~1.2 KB of JSON
becomes ~170 bytes. Values written before (JSON text) are read as they are. This is done on SQLite,
where the sandbox keeps everything in one file; PostgreSQL stores the JSON text.

The dictionary belongs to tag 1 and must never change: values written with it are read with it.
A new dictionary takes a new tag, and readers keep every older one.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

from sqlalchemy import JSON, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

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


def pack(value: Any) -> bytes:
    """The stored form of a JSON value (or of JSON text already encoded)."""
    raw = value.encode() if isinstance(value, str) else dumps(value)
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, _DICTIONARY_V1)
    return bytes((_TAG_V1,)) + deflate.compress(raw) + deflate.flush()


def unpack_text(stored: bytes | bytearray | memoryview | str) -> str:
    """The JSON text of a stored value."""
    if isinstance(stored, str):
        return stored
    data = bytes(stored)
    if data[:1] == bytes((_TAG_V1,)):
        inflate = zlib.decompressobj(-15, _DICTIONARY_V1)
        return (inflate.decompress(data[1:]) + inflate.flush()).decode()
    return data.decode()


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
                return None if value is None else pack(value)

        else:

            def process(value: Any) -> Any:
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


SQL_FUNCTION = "signalpost_unpack"


def sqlite_unpack(stored: bytes | str | None) -> str | None:
    """`signalpost_unpack(column)` on SQLite: the JSON text of a stored value."""
    return None if stored is None else unpack_text(stored)


class packed_text(FunctionElement[str]):
    """The JSON text of a `PackedJSON` column, in SQL (for searching it)."""

    type = Text()
    inherit_cache = True


@compiles(packed_text)
def _packed_text_default(element: packed_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS TEXT)"


@compiles(packed_text, "sqlite")
def _packed_text_sqlite(element: packed_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{SQL_FUNCTION}({compiler.process(element.clauses, **kw)})"
