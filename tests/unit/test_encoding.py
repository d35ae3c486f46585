"""SMS encoding and segment counting: table-driven edge cases, and a property test against an
independent reference encoder (real septet lists and UTF-16-BE bytes, split by slicing)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signalpost.messages.encoding import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    MAX_PARTS,
    SMART_REPLACEMENTS,
    EncodingError,
    analyze,
    is_gsm7,
    split_parts,
)

# --- reference encoder, written from GSM 03.38 independently of the module under test ----------

ESC = 0x1B
# (code point, septet) for the 127 characters of the basic table (0x1B is the escape).
REF_BASIC: dict[str, int] = {
    char: code
    for code, char in enumerate(
        [
            *("@", "£", "$", "¥", "è", "é", "ù", "ì", "ò", "Ç", "\n", "Ø", "ø", "\r", "Å", "å"),
            *("Δ", "_", "Φ", "Γ", "Λ", "Ω", "Π", "Ψ", "Σ", "Θ", "Ξ", None, "Æ", "æ", "ß", "É"),
            *" !\"#¤%&'()*+,-./0123456789:;<=>?",
            *"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§",
            *"¿abcdefghijklmnopqrstuvwxyzäöñüà",
        ]
    )
    if char is not None
}
REF_EXTENSION = {
    "\x0c": 10,
    "^": 20,
    "{": 40,
    "}": 41,
    "\\": 47,
    "[": 60,
    "~": 61,
    "]": 62,
    "|": 64,
    "\u20ac": 101,
}
REF_DECODE = {code: char for char, code in REF_BASIC.items()}
REF_DECODE_EXT = {code: char for char, code in REF_EXTENSION.items()}


def ref_septets(text: str) -> list[int] | None:
    out: list[int] = []
    for char in text:
        if char in REF_BASIC:
            out.append(REF_BASIC[char])
        elif char in REF_EXTENSION:
            out += [ESC, REF_EXTENSION[char]]
        else:
            return None
    return out


def ref_decode(septets: list[int]) -> str:
    chars, it = [], iter(septets)
    for code in it:
        chars.append(REF_DECODE_EXT[next(it)] if code == ESC else REF_DECODE[code])
    return "".join(chars)


def ref_split_gsm(septets: list[int]) -> list[list[int]]:
    if len(septets) <= 160:
        return [septets]
    parts, rest = [], septets
    while rest:
        cut = min(153, len(rest))
        if rest[cut - 1] == ESC:  # never end a part on the first half of an escape pair
            cut -= 1
        parts.append(rest[:cut])
        rest = rest[cut:]
    return parts


def ref_split_ucs2(data: bytes) -> list[bytes]:
    if len(data) <= 140:
        return [data]
    parts, rest = [], data
    while rest:
        cut = min(134, len(rest))
        if 0xD8 <= rest[cut - 2] <= 0xDB:  # never end a part on a high surrogate
            cut -= 2
        parts.append(rest[:cut])
        rest = rest[cut:]
    return parts


def ref_parts(text: str, *, ucs2: bool = False) -> tuple[str, int, list[str]]:
    """(encoding, septets or UTF-16 units, text of each part) by the reference encoder."""
    septets = None if ucs2 else ref_septets(text)
    if septets is not None:
        chunks = ref_split_gsm(septets)
        return "GSM-7", len(septets), [ref_decode(c) for c in chunks]
    data = text.encode("utf-16-be", "surrogatepass")
    chunks_b = ref_split_ucs2(data)
    return "UCS-2", len(data) // 2, [c.decode("utf-16-be", "surrogatepass") for c in chunks_b]


def test_reference_tables_match_the_module() -> None:
    assert set(REF_BASIC) == GSM7_BASIC
    assert REF_EXTENSION == GSM7_EXTENSION
    assert len(REF_BASIC) == 127


# --- edge cases ------------------------------------------------------------------------------

EXTENSION_CHARS = "^{}\\[~]|€\f"
EMOJI = "\U0001f600"  # 😀, a surrogate pair in UTF-16


@pytest.mark.parametrize(
    ("text", "encoding", "parts", "units"),
    [
        ("", "GSM-7", 1, 0),
        ("Hello, World!", "GSM-7", 1, 13),
        ("a" * 160, "GSM-7", 1, 160),
        ("a" * 161, "GSM-7", 2, 161),
        ("a" * 306, "GSM-7", 2, 306),
        ("a" * 307, "GSM-7", 3, 307),
        ("a" * 1530, "GSM-7", 10, 1530),
        ("a" * 1531, "GSM-7", 11, 1531),
        # extension characters count two septets
        ("€" * 80, "GSM-7", 1, 160),
        ("€" * 80 + "a", "GSM-7", 2, 161),
        ("a" * 159 + "€", "GSM-7", 2, 161),
        # 152 + an escape pair straddling the 153 boundary: the pair moves to part 2 whole
        ("a" * 152 + "€" + "a" * 10, "GSM-7", 2, 164),
        # with the pair pushed, part 1 carries 152 septets, so 306 septets need a third part
        ("a" * 152 + "€" + "a" * 151, "GSM-7", 2, 305),
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 3, 306),
        # without a straddle, 306 septets fit in 2 parts
        ("a" * 151 + "€" + "a" * 153, "GSM-7", 2, 306),
        # GSM basic characters outside ASCII stay GSM-7; one other accent makes UCS-2
        ("Ça fait 5€", "GSM-7", 1, 11),
        ("Ça coûte 5€", "UCS-2", 1, 11),
        ("ΔΦΓΛΩΠΨΣΘΞ äöñüà ÄÖÑÜ§ ¿¡ £¥¤ ÆæßÉØøÅå èéùìòÇ", "GSM-7", 1, 45),
        # UCS-2
        ("ê" * 70, "UCS-2", 1, 70),
        ("ê" * 71, "UCS-2", 2, 71),
        ("ê" * 134, "UCS-2", 2, 134),
        ("ê" * 135, "UCS-2", 3, 135),
        ("ê" * 68 + EMOJI, "UCS-2", 1, 70),
        ("ê" * 69 + EMOJI, "UCS-2", 2, 71),
        # an emoji straddling the 67-unit boundary moves to the next part whole
        ("ê" * 66 + EMOJI + "ê" * 10, "UCS-2", 2, 78),
        ("ê" * 66 + EMOJI + "ê" * 65, "UCS-2", 2, 133),
        ("ê" * 66 + EMOJI + "ê" * 66, "UCS-2", 3, 134),
        # without a straddle, 134 units fit in 2 parts
        ("ê" * 65 + EMOJI + "ê" * 67, "UCS-2", 2, 134),
        (EMOJI * 35, "UCS-2", 1, 70),
        (EMOJI * 36, "UCS-2", 2, 72),
        (EMOJI * 67, "UCS-2", 3, 134),  # only 33 pairs (66 units) fit a part of 67
        ("中文短信", "UCS-2", 1, 4),
    ],
)
def test_parts(text: str, encoding: str, parts: int, units: int) -> None:
    analysis = analyze(text)
    assert (analysis.encoding, analysis.parts, analysis.septets_or_units) == (
        encoding,
        parts,
        units,
    )
    assert analysis.num_chars == len(text)
    assert analysis.text == text
    assert not analysis.smart_encoding_applied
    assert len(split_parts(text, analysis.encoding)) == parts
    assert "".join(split_parts(text, analysis.encoding)) == text


@pytest.mark.parametrize("char", EXTENSION_CHARS)
def test_each_extension_character_counts_two_septets(char: str) -> None:
    analysis = analyze("a" + char)
    assert (analysis.encoding, analysis.septets_or_units, analysis.num_chars) == ("GSM-7", 3, 2)
    assert analyze(char * 80).parts == 1
    assert analyze(char * 81).parts == 2


def test_split_parts_keeps_escape_pairs_and_surrogate_pairs_whole() -> None:
    assert [len(p) for p in split_parts("a" * 152 + "€" + "a" * 10, "GSM-7")] == [152, 11]
    parts = split_parts("ê" * 66 + EMOJI + "ê" * 10, "UCS-2")
    assert parts == ["ê" * 66, EMOJI + "ê" * 10]
    with pytest.raises(EncodingError):
        split_parts(EMOJI, "GSM-7")


def test_num_chars_counts_code_points() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one glyph, five code points
    analysis = analyze(family)
    assert (analysis.num_chars, analysis.septets_or_units) == (5, 8)


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        ("\u201cHello\u201d", '"Hello"'),
        ("It\u2019s \u2018fine\u2019", "It's 'fine'"),
        ("\u201eGuten Tag\u201f", '"Guten Tag"'),
        ("\u00abBonjour\u00bb \u2039oui\u203a", "\"Bonjour\" 'oui'"),
        ("9\u20135 \u2014 open", "9-5 - open"),
        ("\u22123\u00b0", None),  # ° is not GSM-7: nothing is replaced
        ("\u22123 C", "-3 C"),
        ("Wait\u2026", "Wait..."),
        ("a\u00a0b\u2009c\u202fd\u3000e\tf", "a b c d e f"),
        ("\u2022 one\n\u2022 two", "- one\n- two"),
        ("zero\u200bwidth\ufeff", "zerowidth"),
        ("1\u20442", "1/2"),
        ("x\u02c6y\u02dcz", "x^y~z"),
        ("rock \u0060n\u00b4 roll", "rock 'n' roll"),
    ],
)
def test_smart_replacements(text: str, sent: str | None) -> None:
    analysis = analyze(text, smart=True)
    if sent is None:
        assert (analysis.text, analysis.encoding) == (text, "UCS-2")
        assert not analysis.smart_encoding_applied
    else:
        assert (analysis.text, analysis.encoding) == (sent, "GSM-7")
        assert analysis.smart_encoding_applied
        assert analysis.num_chars == len(sent)
    # without smart encoding the same text goes as UCS-2, untouched
    plain = analyze(text)
    assert (plain.text, plain.encoding, plain.smart_encoding_applied) == (text, "UCS-2", False)


def test_smart_ellipsis_changes_the_length() -> None:
    text = "a" * 157 + "\u2026"
    analysis = analyze(text, smart=True)
    assert (analysis.encoding, analysis.num_chars, analysis.parts) == ("GSM-7", 160, 1)
    longer = analyze("a" * 158 + "\u2026", smart=True)
    assert (longer.num_chars, longer.parts) == (161, 2)


def test_smart_encoding_that_cannot_reach_gsm7_sends_the_original() -> None:
    text = "\u201cHi\u201d " + EMOJI
    analysis = analyze(text, smart=True)
    assert (analysis.text, analysis.encoding, analysis.smart_encoding_applied) == (
        text,
        "UCS-2",
        False,
    )


def test_smart_encoding_on_gsm7_text_changes_nothing() -> None:
    text = "Plain 'ascii' \"text\" - with ^{}[]~|\\€"
    analysis = analyze(text, smart=True)
    assert (analysis.text, analysis.encoding, analysis.smart_encoding_applied) == (
        text,
        "GSM-7",
        False,
    )


def test_smart_table_never_replaces_gsm7_and_always_yields_gsm7() -> None:
    assert 20 <= len(SMART_REPLACEMENTS) <= 60
    for char, replacement in SMART_REPLACEMENTS.items():
        assert len(char) == 1
        assert not is_gsm7(char), char
        assert is_gsm7(replacement), char


def test_ucs2_requested() -> None:
    analysis = analyze("Hello", requested="ucs2")
    assert (analysis.encoding, analysis.parts, analysis.septets_or_units) == ("UCS-2", 1, 5)
    smart = analyze("\u201cHello\u201d", requested="ucs2", smart=True)
    assert (smart.text, smart.smart_encoding_applied) == ("\u201cHello\u201d", False)
    assert analyze("a" * 71, requested="ucs2").parts == 2
    assert analyze("", requested="ucs2").parts == 1


def test_gsm7_requested() -> None:
    assert analyze("Hi €", requested="gsm7").encoding == "GSM-7"
    assert analyze("\u201cHi\u201d", requested="gsm7", smart=True).text == '"Hi"'


@pytest.mark.parametrize(
    ("text", "smart", "char", "position"),
    [
        ("Hi " + EMOJI, False, EMOJI, 3),
        ("caf\u00e9 cr\u00e8me \u00e7a", False, "\u00e7", 11),  # é, è are GSM-7; ç is not
        ("\u201cHi\u201d", False, "\u201c", 0),
        # with smart encoding the look-alikes are fine; the position is in the client's text
        ("\u2026\u201cHi\u201d \u00b0", True, "\u00b0", 6),
    ],
)
def test_gsm7_requested_rejects_non_gsm7(text: str, smart: bool, char: str, position: int) -> None:
    with pytest.raises(EncodingError) as caught:
        analyze(text, requested="gsm7", smart=smart)
    assert isinstance(caught.value, ValueError)
    assert (caught.value.char, caught.value.position) == (char, position)
    assert f"U+{ord(char):04X}" in str(caught.value)
    assert "GSM-7" in str(caught.value)


def test_unknown_requested_encoding() -> None:
    with pytest.raises(ValueError, match="Unknown encoding"):
        analyze("x", requested="utf8")  # type: ignore[arg-type]


def test_is_gsm7() -> None:
    assert is_gsm7("")
    assert is_gsm7("@£$¥\n\r\f€")
    assert not is_gsm7("\x1b")  # the escape itself is not a character
    assert not is_gsm7("\x00")  # @ is septet 0, NUL is not @
    assert not is_gsm7("`")
    assert not is_gsm7("ç")
    assert MAX_PARTS == 10


# --- property test against the reference encoder ---------------------------------------------

LOOK_ALIKES = "\u201c\u201d\u2018\u2019\u2013\u2014\u2026\u00a0\u2022\u00ab\u00bb\u200b\t\u2212`"
GSM_BASIC_CHARS = "".join(sorted(REF_BASIC))

ALPHABETS = {
    "gsm_basic": st.sampled_from(GSM_BASIC_CHARS),
    "gsm_extension": st.sampled_from(EXTENSION_CHARS),
    "look_alike": st.sampled_from(LOOK_ALIKES),
    "any": st.characters(codec="utf-8"),
    "astral": st.characters(min_codepoint=0x10000, codec="utf-8"),
}


@st.composite
def sms_texts(draw: st.DrawFn) -> str:
    """Texts over a random subset of the alphabets, of any length up to 700 characters, so that
    long GSM-7 texts, long UCS-2 texts and pairs straddling a part boundary all come up often."""
    names = draw(st.sets(st.sampled_from(sorted(ALPHABETS)), min_size=1))
    alphabet = st.one_of(*(ALPHABETS[name] for name in sorted(names)))
    size = draw(st.integers(min_value=0, max_value=700))
    return draw(st.text(alphabet=alphabet, min_size=size, max_size=size))


def _check_against_reference(text: str, smart: bool) -> None:
    analysis = analyze(text, smart=smart)
    if not analysis.smart_encoding_applied:
        assert analysis.text == text
    sent = analysis.text
    encoding, units, chunks = ref_parts(sent)
    assert analysis.encoding == encoding
    assert analysis.septets_or_units == units
    assert analysis.parts == len(chunks)
    assert analysis.num_chars == len(sent)
    assert "".join(chunks) == sent
    assert split_parts(sent, analysis.encoding) == chunks

    if smart and analysis.smart_encoding_applied:
        assert sent != text
        assert ref_septets(text) is None  # only non-GSM-7 text is ever rewritten
    elif smart:
        # smart encoding was declined: the text was GSM-7 already, or cannot become GSM-7
        assert ref_septets(text) is not None or analysis.encoding == "UCS-2"

    forced = analyze(text, requested="ucs2", smart=smart)
    ucs_units, ucs_chunks = ref_parts(text, ucs2=True)[1:]
    assert (forced.text, forced.encoding, forced.smart_encoding_applied) == (text, "UCS-2", False)
    assert (forced.septets_or_units, forced.parts) == (ucs_units, len(ucs_chunks))

    if analysis.encoding == "GSM-7":
        assert analyze(text, requested="gsm7", smart=smart) == analysis
    else:
        with pytest.raises(EncodingError):
            analyze(text, requested="gsm7", smart=smart)


@settings(max_examples=300, deadline=None)
@given(text=sms_texts(), smart=st.booleans())
def test_matches_reference_encoder(text: str, smart: bool) -> None:
    _check_against_reference(text, smart)
