"""`kit.packed`: JSON stored compressed round-trips, and values stored before as JSON text still read."""

from __future__ import annotations

from typing import Any

from signalpost.kit.jsonio import dumps
from signalpost.kit.packed import pack, sqlite_unpack, unpack, unpack_text

EVENT: dict[str, Any] = {
    "record_type": "event",
    "id": "01a24534-3926-7000-ae34-dec3276b2cb6",
    "event_type": "message.sent",
    "occurred_at": "2026-12-05T07:56:20.134Z",
    "payload": {
        "record_type": "message",
        "direction": "outbound",
        "id": "01a24534-3877-7000-92cb-c2f8ad45328f",
        "type": "SMS",
        "from": {"phone_number": "+13125559241", "carrier": "SIGNALPOST", "line_type": "VoIP"},
        "to": [{"phone_number": "+14156660000", "status": "sent"}],
        "text": "héllo ✓ 🙂",
        "cost": {"amount": "0.0070", "currency": "USD"},
        "errors": [],
    },
}


def test_round_trip_and_size() -> None:
    stored = pack(EVENT)
    assert unpack(stored) == EVENT
    assert unpack_text(stored) == dumps(EVENT).decode()
    assert len(stored) < len(dumps(EVENT)) // 2


def test_json_text_is_packed_as_is() -> None:
    text = dumps(EVENT).decode()
    assert unpack_text(pack(text)) == text


def test_values_stored_before_as_json_text_read_unchanged() -> None:
    text = dumps(EVENT).decode()
    assert unpack(text) == EVENT
    assert unpack(text.encode()) == EVENT
    assert sqlite_unpack(text) == text
    assert sqlite_unpack(None) is None
