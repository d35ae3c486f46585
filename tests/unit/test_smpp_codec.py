"""carriers.smpp.codec: GSM-7 / UCS-2 choice, segmentation, UDH, lenient inbound decoding."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signalpost.carriers.smpp.codec import (
    DC_GSM7,
    DC_IA5,
    DC_LATIN1,
    DC_UCS2,
    ESM_UDHI,
    GSM7_BASIC,
    GSM7_EXTENSION,
    TLV_SAR_MSG_REF_NUM,
    TLV_SAR_SEGMENT_SEQNUM,
    TLV_SAR_TOTAL_SEGMENTS,
    Concat,
    EncodeError,
    decode_text,
    encode_message,
    gsm7_decode,
    gsm7_encode,
    sar_concat,
    split_udh,
)

GSM_CHARS = [c for i, c in enumerate(GSM7_BASIC) if i != 0x1B] + list(GSM7_EXTENSION)


def _reassemble(encoded_parts: tuple[bytes, ...], udhi: bool, dc: int) -> str:
    bodies = []
    for part in encoded_parts:
        if udhi:
            _, part = split_udh(part)
        bodies.append(part)
    data = b"".join(bodies)
    return gsm7_decode(data) if dc == DC_GSM7 else data.decode("utf-16-be")


@pytest.mark.parametrize(
    ("text", "encoding", "sizes", "udh"),
    [
        ("a" * 160, "GSM-7", [160], False),
        ("a" * 161, "GSM-7", [159, 14], True),
        ("€" * 100, "GSM-7", [158, 54], True),
        ("a" * 152 + "€" + "a" * 10, "GSM-7", [158, 18], True),
        ("Ж" * 70, "UCS-2", [140], False),
        ("Ж" * 135, "UCS-2", [140, 140, 8], True),
        ("Ж" * 66 + "😀" + "Ж" * 5, "UCS-2", [138, 20], True),
        ("", "GSM-7", [0], False),
    ],
)
def test_parts_on_the_wire(text: str, encoding: str, sizes: list[int], udh: bool) -> None:
    message = encode_message(text, reference=7)
    assert message.encoding == encoding
    assert message.data_coding == (DC_GSM7 if encoding == "GSM-7" else DC_UCS2)
    assert [len(p) for p in message.parts] == sizes
    assert message.esm_class == (ESM_UDHI if udh else 0)
    if udh:
        total = len(sizes)
        for i, part in enumerate(message.parts):
            assert part[:6] == bytes([5, 0, 3, 7, total, i + 1])
    assert _reassemble(message.parts, udh, message.data_coding) == text


def test_escape_pair_opens_the_next_part_instead_of_splitting() -> None:
    message = encode_message("a" * 152 + "€" + "a" * 152)
    first, second, third = (split_udh(p)[1] for p in message.parts)
    assert first == b"a" * 152 and second[:2] == b"\x1be" and len(third) == 1


def test_gsm7_table_round_trips_and_extension_is_two_septets() -> None:
    text = "".join(GSM_CHARS)
    assert gsm7_decode(gsm7_encode(text)) == text
    with pytest.raises(EncodeError):
        gsm7_encode("`")
    assert gsm7_encode("€") == b"\x1b\x65" and gsm7_encode("@") == b"\x00"


def test_forced_gsm7_rejects_other_characters() -> None:
    with pytest.raises(EncodeError):
        encode_message("Ж", "GSM-7")
    assert encode_message("abc", "UCS-2").data_coding == DC_UCS2


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(GSM_CHARS), max_size=700))
def test_gsm7_segmentation_round_trips(text: str) -> None:
    message = encode_message(text, reference=200)
    assert message.encoding == "GSM-7"
    udhi = message.esm_class == ESM_UDHI
    assert _reassemble(message.parts, udhi, DC_GSM7) == text
    for part in message.parts:
        _, body = split_udh(part) if udhi else (None, part)
        assert len(body) <= (153 if udhi else 160)
        # no part ends in a dangling escape
        escaped = False
        for b in body:
            escaped = (b == 0x1B) and not escaped
        assert not escaped


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=300))
def test_ucs2_segmentation_never_splits_a_surrogate_pair(text: str) -> None:
    text = "".join(c for c in text if not 0xD800 <= ord(c) <= 0xDFFF) + "Ж"
    message = encode_message(text, reference=1)
    assert message.encoding == "UCS-2"
    udhi = message.esm_class == ESM_UDHI
    for part in message.parts:
        body = split_udh(part)[1] if udhi else part
        assert len(body) <= (134 if udhi else 140)
        body.decode("utf-16-be")  # a split surrogate pair would not decode strictly
    assert _reassemble(message.parts, udhi, DC_UCS2) == text
    if udhi:
        seqs = [split_udh(p)[0] for p in message.parts]
        assert seqs == [Concat(1, len(seqs), i + 1) for i in range(len(seqs))]


def test_lenient_inbound_decoding() -> None:
    assert decode_text(b"Hello \x00", DC_GSM7) == "Hello @"
    assert decode_text(b"\x1b\x65uro\x1b", DC_GSM7) == "€uro"
    assert decode_text(b"\x1bA", DC_GSM7) == "A"  # unknown extension: the basic character
    assert decode_text("héllo".encode("latin-1"), DC_GSM7) == "héllo"  # Latin-1 under dc 0
    assert decode_text("héllo".encode(), DC_GSM7) == "héllo"
    assert decode_text(b"plain ascii \xff", DC_IA5) == "plain ascii \ufffd"
    assert decode_text("ça".encode("latin-1"), DC_LATIN1) == "ça"
    assert decode_text("Жé😀".encode("utf-16-be"), DC_UCS2) == "Жé😀"
    assert decode_text(b"\x04", DC_UCS2) == "\u0400"  # odd length: padded, never raises
    assert decode_text(b"\xd8\x00", DC_UCS2) == "\ufffd"  # lone surrogate


def test_udh_with_8_and_16_bit_references_and_malformed_headers() -> None:
    assert split_udh(bytes([5, 0, 3, 9, 2, 1]) + b"hi") == (Concat(9, 2, 1), b"hi")
    assert split_udh(bytes([6, 8, 4, 1, 2, 3, 2]) + b"yo") == (Concat(0x0102, 3, 2), b"yo")
    other_ie = bytes([8, 0x24, 1, 1, 0, 3, 4, 2, 1]) + b"x"
    assert split_udh(other_ie) == (Concat(4, 2, 1), b"x")
    broken = bytes([9, 0, 3, 1]) + b"x"
    assert split_udh(broken) == (None, broken)
    assert split_udh(bytes([5, 0, 3, 1, 2, 3]) + b"x")[0] is None  # seq > total


def test_sar_tlvs() -> None:
    tlvs = [
        (TLV_SAR_MSG_REF_NUM, b"\x01\x02"),
        (TLV_SAR_TOTAL_SEGMENTS, b"\x02"),
        (TLV_SAR_SEGMENT_SEQNUM, b"\x02"),
    ]
    assert sar_concat(tlvs) == Concat(0x0102, 2, 2)
    assert sar_concat(tlvs[:2]) is None
