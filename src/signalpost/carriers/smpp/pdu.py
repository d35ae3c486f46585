"""Reading a deliver_sm PDU ourselves: every field as octets, nothing decoded strictly.

aiosmpplib decodes the text of a deliver_sm with a strict codec and answers generic_nack when it
fails; receipts from real SMSCs carry odd octets, so the session reads the PDU here instead.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER = struct.Struct("!IIII")
DELIVER_SM = 0x00000005
ESM_TYPE_MASK = 0x3C
ESM_RECEIPT = 0x04  # SMSC delivery receipt
ESM_INTERMEDIATE = 0x20  # intermediate delivery notification


class PduError(ValueError):
    """The PDU is shorter than its fields say."""


@dataclass(frozen=True)
class DeliverSmPdu:
    sequence_num: int
    service_type: str
    source_ton: int
    source_npi: int
    source_addr: str
    dest_ton: int
    dest_npi: int
    destination_addr: str
    esm_class: int
    data_coding: int
    short_message: bytes
    tlvs: tuple[tuple[int, bytes], ...]

    @property
    def is_receipt(self) -> bool:
        return (self.esm_class & ESM_TYPE_MASK) in (ESM_RECEIPT, ESM_INTERMEDIATE)

    @property
    def has_udh(self) -> bool:
        return bool(self.esm_class & 0x40)

    def tlv(self, tag: int) -> bytes | None:
        for t, value in self.tlvs:
            if t == tag:
                return value
        return None


class _Reader:
    def __init__(self, data: bytes, offset: int) -> None:
        self.data = data
        self.i = offset

    def c_string(self) -> str:
        end = self.data.find(b"\x00", self.i)
        if end < 0:
            raise PduError("unterminated C-octet string")
        value = self.data[self.i : end].decode("latin-1")
        self.i = end + 1
        return value

    def byte(self) -> int:
        if self.i >= len(self.data):
            raise PduError("PDU ends early")
        value = self.data[self.i]
        self.i += 1
        return value

    def octets(self, n: int) -> bytes:
        if self.i + n > len(self.data):
            raise PduError("PDU ends early")
        value = self.data[self.i : self.i + n]
        self.i += n
        return value


def parse_deliver_sm(pdu: bytes) -> DeliverSmPdu:
    """Parse a whole deliver_sm PDU (header included)."""
    if len(pdu) < HEADER.size:
        raise PduError("shorter than a PDU header")
    length, command, _status, seq = HEADER.unpack_from(pdu)
    if command != DELIVER_SM:
        raise PduError(f"not a deliver_sm (command 0x{command:08x})")
    r = _Reader(pdu[:length], HEADER.size)
    service_type = r.c_string()
    s_ton, s_npi, source = r.byte(), r.byte(), r.c_string()
    d_ton, d_npi, dest = r.byte(), r.byte(), r.c_string()
    esm_class = r.byte()
    r.byte(), r.byte()  # protocol_id, priority_flag
    r.c_string(), r.c_string()  # schedule_delivery_time, validity_period
    r.byte(), r.byte()  # registered_delivery, replace_if_present_flag
    data_coding = r.byte()
    r.byte()  # sm_default_msg_id
    short_message = r.octets(r.byte())
    tlvs: list[tuple[int, bytes]] = []
    while r.i + 4 <= len(r.data):
        tag, size = struct.unpack_from("!HH", r.data, r.i)
        r.i += 4
        tlvs.append((tag, r.octets(size)))
    payload = next((v for t, v in tlvs if t == 0x0424), None)  # message_payload
    if not short_message and payload:
        short_message = payload
    return DeliverSmPdu(
        seq,
        service_type,
        s_ton,
        s_npi,
        source,
        d_ton,
        d_npi,
        dest,
        esm_class,
        data_coding,
        short_message,
        tuple(tlvs),
    )
