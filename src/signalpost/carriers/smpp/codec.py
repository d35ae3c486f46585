"""SMPP text on the wire: GSM-7 / UCS-2 encoding, segmentation and the inbound side.

Pure functions, no I/O, no dependency on the rest of signalpost.

Outbound (`encode_message`): GSM-7 is sent *unpacked* (one octet per septet, data_coding 0), UCS-2
as UTF-16-BE (data_coding 8). A text that fits one part (160 septets / 70 UTF-16 units) goes as is;
a longer one is cut into parts of at most 153 septets / 67 units, each prefixed with a concatenation
header (UDH ``05 00 03 ref total seq``, 8-bit reference) and flagged with esm_class UDHI (0x40).
An extension character (ESC + code, two septets) and a surrogate pair (two units) are never split
between two parts, so a part may carry one septet or unit less than its capacity.

Inbound (`decode_text`): lenient. data_coding 0 is the GSM default alphabet (unpacked), 1 IA5
(ASCII), 3 Latin-1, 8 UCS-2; undecodable octets become U+FFFD, never an exception (a receipt with
odd bytes in its ``text:`` must still be acknowledged). `split_udh` reads concatenation headers
(8- and 16-bit references); `sar_concat` reads the SAR TLVs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

WireEncoding = Literal["GSM-7", "UCS-2"]

DC_GSM7 = 0
DC_IA5 = 1
DC_LATIN1 = 3
DC_UCS2 = 8
ESM_UDHI = 0x40

GSM7_SINGLE = 160
GSM7_MULTI = 153
UCS2_SINGLE = 70
UCS2_MULTI = 67
ESC = 0x1B
REPLACEMENT = "\ufffd"

# 3GPP TS 23.038 default alphabet: index = septet value. Index 0x1B is the escape to the extension
# table and never stands for a character of its own.
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each is sent as ESC + code and costs two septets.
GSM7_EXTENSION = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
_BASIC_CODE = {ch: i for i, ch in enumerate(GSM7_BASIC) if i != ESC}
_EXTENSION_CHAR = {code: ch for ch, code in GSM7_EXTENSION.items()}

# SMPP 3.4 TLV tags read here
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_SAR_MSG_REF_NUM = 0x020C
TLV_SAR_TOTAL_SEGMENTS = 0x020E
TLV_SAR_SEGMENT_SEQNUM = 0x020F
TLV_NETWORK_ERROR_CODE = 0x0423
TLV_MESSAGE_STATE = 0x0427


class EncodeError(ValueError):
    """The text cannot be sent in the requested encoding."""


@dataclass(frozen=True)
class EncodedMessage:
    """What goes into the submit_sm of each part: short_message octets (UDH included)."""

    encoding: WireEncoding
    data_coding: int
    esm_class: int
    parts: tuple[bytes, ...]


def is_gsm7(text: str) -> bool:
    return all(ch in _BASIC_CODE or ch in GSM7_EXTENSION for ch in text)


def _gsm7_units(text: str) -> list[bytes]:
    units: list[bytes] = []
    for ch in text:
        code = _BASIC_CODE.get(ch)
        if code is not None:
            units.append(bytes((code,)))
            continue
        ext = GSM7_EXTENSION.get(ch)
        if ext is None:
            raise EncodeError(f"{ch!r} (U+{ord(ch):04X}) is not in the GSM-7 alphabet")
        units.append(bytes((ESC, ext)))
    return units


def gsm7_encode(text: str) -> bytes:
    """Unpacked GSM-7 septets (one octet each); raises `EncodeError` for other characters."""
    return b"".join(_gsm7_units(text))


def gsm7_decode(data: bytes) -> str:
    """Unpacked GSM-7 to text, leniently: an unknown extension code reads as its basic-table
    character (as TS 23.038 asks), a trailing ESC is dropped, an octet above 0x7F is U+FFFD."""
    out: list[str] = []
    i, n = 0, len(data)
    while i < n:
        b = data[i]
        i += 1
        if b > 0x7F:
            out.append(REPLACEMENT)
        elif b != ESC:
            out.append(GSM7_BASIC[b])
        elif i < n:
            nxt = data[i]
            i += 1
            if nxt > 0x7F:
                out.append(REPLACEMENT)
            else:
                out.append(_EXTENSION_CHAR.get(nxt, GSM7_BASIC[nxt] if nxt != ESC else " "))
    return "".join(out)


def _ucs2_units(text: str) -> list[bytes]:
    # A character outside the BMP encodes as a surrogate pair (4 octets) and stays one unit here.
    return [ch.encode("utf-16-be", "surrogatepass") for ch in text]


def _pack(units: Sequence[bytes], capacity: int) -> list[bytes]:
    """Greedy packing of indivisible units into parts of at most `capacity` octets."""
    chunks: list[bytes] = []
    current: list[bytes] = []
    used = 0
    for unit in units:
        if used + len(unit) > capacity and current:
            chunks.append(b"".join(current))
            current, used = [], 0
        current.append(unit)
        used += len(unit)
    chunks.append(b"".join(current))
    return chunks


def concat_udh(reference: int, total: int, seq: int) -> bytes:
    """The 8-bit-reference concatenation header of part `seq` (1-based) of `total`."""
    return bytes((5, 0, 3, reference & 0xFF, total, seq))


def encode_message(
    text: str, encoding: WireEncoding | None = None, reference: int = 0
) -> EncodedMessage:
    """Encode and segment `text`. `encoding` None chooses GSM-7 when every character is in its
    alphabet, else UCS-2; "GSM-7" raises `EncodeError` for a character outside it."""
    if encoding is None:
        encoding = "GSM-7" if is_gsm7(text) else "UCS-2"
    if encoding == "GSM-7":
        units, single, multi, dc = _gsm7_units(text), GSM7_SINGLE, GSM7_MULTI, DC_GSM7
    else:
        units, single, multi, dc = _ucs2_units(text), UCS2_SINGLE * 2, UCS2_MULTI * 2, DC_UCS2
    if sum(len(u) for u in units) <= single:
        return EncodedMessage(encoding, dc, 0, (b"".join(units),))
    chunks = _pack(units, multi)
    total = len(chunks)
    if total > 255:
        raise EncodeError(f"{total} parts: more than a concatenated SMS can carry")
    parts = tuple(concat_udh(reference, total, i + 1) + c for i, c in enumerate(chunks))
    return EncodedMessage(encoding, dc, ESM_UDHI, parts)


def decode_text(data: bytes, data_coding: int) -> str:
    """The text of an inbound short_message (UDH already removed), decoded leniently."""
    if data_coding >= 0xF0:  # message class group: bit 2 set means 8-bit data
        data_coding = 4 if data_coding & 0x04 else DC_GSM7
    if data_coding == DC_UCS2:
        if len(data) % 2:
            data = data + b"\x00"
        return data.decode("utf-16-be", "replace")
    if data_coding == DC_IA5:
        return data.decode("ascii", "replace")
    if data_coding == DC_GSM7:
        if any(b > 0x7F for b in data):
            # Not unpacked GSM-7: some SMSCs put Latin-1 (or UTF-8) here under data_coding 0.
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                return data.decode("latin-1")
        return gsm7_decode(data)
    return data.decode("latin-1")


@dataclass(frozen=True)
class Concat:
    """Where a part belongs: `reference` shared by the parts of one message, `seq` of `total`."""

    reference: int
    total: int
    seq: int


def split_udh(short_message: bytes) -> tuple[Concat | None, bytes]:
    """Split a UDHI short_message into its concatenation info (8- or 16-bit reference, when the
    header has one) and the body. A malformed header leaves the octets as they are."""
    if not short_message:
        return None, short_message
    udhl = short_message[0]
    if udhl + 1 > len(short_message):
        return None, short_message
    header, body = short_message[1 : 1 + udhl], short_message[1 + udhl :]
    concat: Concat | None = None
    i = 0
    while i + 2 <= len(header):
        iei, length = header[i], header[i + 1]
        value = header[i + 2 : i + 2 + length]
        if len(value) < length:
            return None, short_message
        if iei == 0x00 and length == 3:
            concat = Concat(value[0], value[1], value[2])
        elif iei == 0x08 and length == 4:
            concat = Concat((value[0] << 8) | value[1], value[2], value[3])
        i += 2 + length
    if concat is not None and not 1 <= concat.seq <= concat.total:
        concat = None
    return concat, body


def sar_concat(tlvs: Iterable[tuple[int, bytes]]) -> Concat | None:
    """Concatenation info from the SAR TLVs (all three needed), else None."""
    found = {tag: value for tag, value in tlvs}
    ref = found.get(TLV_SAR_MSG_REF_NUM)
    total = found.get(TLV_SAR_TOTAL_SEGMENTS)
    seq = found.get(TLV_SAR_SEGMENT_SEQNUM)
    if not ref or not total or not seq:
        return None
    concat = Concat(int.from_bytes(ref, "big"), total[0], seq[0])
    return concat if 1 <= concat.seq <= concat.total else None
