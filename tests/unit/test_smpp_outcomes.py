"""carriers.smpp.outcomes and pdu: submit_sm_resp statuses, receipts (text and TLVs), deliver_sm."""

from __future__ import annotations

import struct

import pytest

from signalpost.carriers.smpp.codec import TLV_MESSAGE_STATE, TLV_RECEIPTED_MESSAGE_ID
from signalpost.carriers.smpp.outcomes import (
    GENERIC_NACK,
    parse_receipt,
    parse_receipt_text,
    submit_status,
)
from signalpost.carriers.smpp.pdu import PduError, parse_deliver_sm


@pytest.mark.parametrize(
    ("status", "outcome", "code"),
    [
        (0x00, "accepted", None),
        (0x58, "throttled", "40011"),
        (0x14, "throttled", "40011"),
        (0x0B, "rejected", "40012"),
        (0x0A, "rejected", "40013"),
        (0x01, "rejected", "40009"),
        (0x66, "rejected", "40004"),
        (0x08, "retry", "40008"),
        (GENERIC_NACK, "retry", "40008"),
        (0x99, "rejected", "40008"),
    ],
)
def test_submit_status_table(status: int, outcome: str, code: str | None) -> None:
    found = submit_status(status)
    assert (found.outcome, found.error_code) == (outcome, code)


CLASSIC = (
    "id:1234 sub:001 dlvrd:001 submit date:2612050930 done date:2612050931 "
    "stat:DELIVRD err:000 text:hello id: world"
)


def test_receipt_text_fields() -> None:
    fields = parse_receipt_text(CLASSIC)
    assert fields["id"] == "1234" and fields["stat"] == "DELIVRD" and fields["err"] == "000"
    assert fields["submit date"] == "2612050930" and fields["text"] == "hello id: world"
    jasmin = "id:5f0c-aa submit date:2612050930 done date:2612050931 stat:UNDELIV err:021"
    assert parse_receipt_text(jasmin) == {
        "id": "5f0c-aa",
        "submit date": "2612050930",
        "done date": "2612050931",
        "stat": "UNDELIV",
        "err": "021",
    }


@pytest.mark.parametrize(
    ("stat", "status", "code"),
    [
        ("DELIVRD", "delivered", None),
        ("EXPIRED", "expired", "40005"),
        ("UNDELIV", "delivery_failed", "40008"),
        ("REJECTD", "delivery_failed", "40004"),
        ("DELETED", "delivery_failed", "40008"),
        ("UNKNOWN", "delivery_unconfirmed", None),
        ("ENROUTE", None, None),
        ("ACCEPTD", None, None),
    ],
)
def test_receipt_states_from_text(stat: str, status: str | None, code: str | None) -> None:
    info = parse_receipt(CLASSIC.replace("DELIVRD", stat), [])
    assert info is not None and info.carrier_message_id == "1234"
    assert (info.status, info.error_code) == (status, code)


def test_receipt_tlvs_win_over_the_text() -> None:
    tlvs = [(TLV_RECEIPTED_MESSAGE_ID, b"ab12\x00"), (TLV_MESSAGE_STATE, b"\x05")]
    info = parse_receipt(CLASSIC, tlvs)
    assert info is not None
    assert (info.carrier_message_id, info.stat, info.status) == (
        "ab12",
        "UNDELIV",
        "delivery_failed",
    )
    assert parse_receipt("no id here", []) is None


def _deliver_pdu(short_message: bytes, tlvs: bytes = b"", esm: int = 0, dc: int = 0) -> bytes:
    body = (
        b"\x00"
        + b"\x01\x01"
        + b"15551230001\x00"
        + b"\x01\x01"
        + b"15550001111\x00"
        + bytes([esm, 0, 0])
        + b"\x00\x00"
        + bytes([0, 0, dc, 0, len(short_message)])
        + short_message
        + tlvs
    )
    return struct.pack("!IIII", 16 + len(body), 5, 0, 42) + body


def test_deliver_sm_parsing() -> None:
    tlv = struct.pack("!HH", 0x001E, 3) + b"ab\x00"
    pdu = parse_deliver_sm(_deliver_pdu(b"\x1b\x65 \xff", tlv, esm=0x04, dc=0))
    assert pdu.sequence_num == 42 and pdu.source_addr == "15551230001"
    assert pdu.destination_addr == "15550001111" and pdu.is_receipt
    assert pdu.short_message == b"\x1b\x65 \xff" and pdu.tlv(0x001E) == b"ab\x00"
    payload = struct.pack("!HH", 0x0424, 5) + b"hello"
    assert parse_deliver_sm(_deliver_pdu(b"", payload)).short_message == b"hello"
    with pytest.raises(PduError):
        parse_deliver_sm(_deliver_pdu(b"abc")[:-5])
