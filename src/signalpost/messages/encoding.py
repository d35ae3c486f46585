"""SMS text encoding: GSM-7 or UCS-2, smart encoding, and segment (part) counting.

Pure functions, no I/O. `analyze()` decides how an outbound SMS text goes on the air and how many
parts it takes; `split_parts()` gives the text of each part (what a carrier adapter submits).

Encodings
---------
``GSM-7`` is the GSM 03.38 default alphabet. Characters of the basic table cost one septet each.
Characters of the extension table are sent as ESC + code and cost **two** septets each::

    ^  {  }  \\  [  ~  ]  |  €  and form feed (U+000C)

Any other character (letters with accents outside the basic table, emoji, CJK, curly quotes, tab …)
makes the whole message ``UCS-2``, counted in UTF-16 code units: one per character of the Basic
Multilingual Plane, two for an astral character (most emoji) sent as a surrogate pair.

The requested encoding (the API's ``encoding`` field):

- ``auto`` (default): GSM-7 when the text (after smart encoding, if enabled) is GSM-7, else UCS-2.
- ``gsm7``: GSM-7 is required; a text that cannot be GSM-7 (after smart encoding, if enabled)
  raises `EncodingError`, which names the first offending character.
- ``ucs2``: always UCS-2, and smart encoding is never applied.

Segments
--------
========  =============  ==========================================================
encoding  one part       several parts (each part carries a concatenation header)
========  =============  ==========================================================
GSM-7     ≤ 160 septets  153 septets per part
UCS-2     ≤ 70 units     67 UTF-16 code units per part
========  =============  ==========================================================

Parts are counted by packing characters greedily, not by dividing the length: an escape pair
(an extension character) is never split between two parts, nor is a surrogate pair, so a part may
carry one septet/unit less than its capacity. Example: 152 basic characters, ``€``, then 152 more
are 306 septets, yet need three parts (152 + 153 + 1): ``€`` would straddle septets 153 and 154, so
it opens part two. The empty text is one part of zero characters.
`MAX_PARTS` (10) is the most parts an SMS may have; `analyze()` reports the count and leaves the
rejection to the send path.

``num_chars`` is the number of Unicode code points of the text that is sent (after smart encoding).
An emoji made of several code points (a flag, a skin-tone or ZWJ sequence) counts as several.

Smart encoding
--------------
When the messaging profile enables ``smart_encoding`` (and the request does not ask for ``ucs2``),
common Unicode look-alikes, mostly typed by word processors and phones, are replaced by GSM-7
characters. Letters are never transliterated (that would change words), and no GSM-7 character is
ever replaced. The replacement is kept only if the whole result is GSM-7; otherwise the original
text is sent as UCS-2 and ``smart_encoding_applied`` is false.

Replacements (the table is `SMART_REPLACEMENTS`):

- single quotes → ``'``: U+2018 ‘, U+2019 ’, U+201A ‚, U+201B ‛, U+2032 ′, U+2039 ‹, U+203A ›,
  U+02BC ʼ, U+00B4 ´, U+0060 `, U+FF07 ＇
- double quotes → ``"``: U+201C “, U+201D ”, U+201E „, U+201F ‟, U+2033 ″, U+00AB «, U+00BB »,
  U+FF02 ＂
- dashes, minus and bullets → ``-``: U+2010 ‐, U+2011 ‑, U+2012 ‒, U+2013 –, U+2014 —, U+2015 ―,
  U+2212 −, U+2022 •, U+2043 ⁃
- ellipsis U+2026 … → ``...`` (three characters)
- odd spaces → space: U+00A0 (no-break space), U+2000–U+200A (en/em quads and spaces, thin, hair …),
  U+202F (narrow no-break space), U+205F, U+3000 (ideographic space), U+0009 (tab)
- invisible characters → removed: U+200B (zero width space), U+2060 (word joiner), U+FEFF (zero
  width no-break space), U+00AD (soft hyphen)
- U+2044 ⁄ (fraction slash) → ``/``; U+02C6 ˆ → ``^`` and U+02DC ˜ → ``~`` (extension, 2 septets)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]
Requested = Literal["auto", "gsm7", "ucs2"]

MAX_PARTS = 10

GSM7_SINGLE = 160  # septets in a message of one part
GSM7_MULTI = 153  # septets per part of a concatenated message (7 go to the header)
UCS2_SINGLE = 70  # UTF-16 code units in a message of one part
UCS2_MULTI = 67  # UTF-16 code units per part of a concatenated message

# GSM 03.38 basic table, in code order 0x00-0x7F. 0x1B is the escape to the extension table and
# stands for no character; it is written here as a placeholder that is removed below.
_BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
GSM7_BASIC: frozenset[str] = frozenset(_BASIC_TABLE) - {"\x1b"}

# GSM 03.38 extension table: character → code sent after ESC.
GSM7_EXTENSION: dict[str, int] = {
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

_SPACES = (
    "\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000\t"
)

SMART_REPLACEMENTS: dict[str, str] = {
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u2039\u203a\u02bc\u00b4\u0060\uff07", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb\uff02", '"'),
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2022\u2043", "-"),
    "\u2026": "...",
    **dict.fromkeys(_SPACES, " "),
    **dict.fromkeys("\u200b\u2060\ufeff\u00ad", ""),
    "\u2044": "/",
    "\u02c6": "^",
    "\u02dc": "~",
}
"""Unicode look-alike → GSM-7 text used by smart encoding (see the module docstring)."""

_SMART_TRANSLATION = str.maketrans(SMART_REPLACEMENTS)


class EncodingError(ValueError):
    """The text cannot be sent as GSM-7, which the request required."""

    def __init__(self, char: str, position: int) -> None:
        self.char = char
        self.position = position
        super().__init__(
            f"The character {char!r} (U+{ord(char):04X}) at position {position} is not in the "
            "GSM-7 alphabet; send with encoding 'auto' or 'ucs2'."
        )


@dataclass(frozen=True)
class Analysis:
    """How a text goes on the air. `text` is what is sent (after smart encoding)."""

    text: str
    encoding: Encoding
    parts: int
    num_chars: int  # Unicode code points of `text`
    smart_encoding_applied: bool
    septets_or_units: int  # GSM-7 septets, or UCS-2 (UTF-16) code units, of the whole `text`


def septets(char: str) -> int | None:
    """Septets `char` takes in GSM-7 (1 basic, 2 extension), or None when it is not GSM-7."""
    if char in GSM7_BASIC:
        return 1
    if char in GSM7_EXTENSION:
        return 2
    return None


def utf16_units(char: str) -> int:
    """UTF-16 code units of one code point: 2 for an astral character (a surrogate pair)."""
    return 2 if ord(char) > 0xFFFF else 1


def first_non_gsm7(text: str) -> int | None:
    """Index of the first character that is not GSM-7, or None when the whole text is."""
    for i, char in enumerate(text):
        if septets(char) is None:
            return i
    return None


def is_gsm7(text: str) -> bool:
    """True when every character of `text` is in the GSM-7 basic or extension table."""
    return first_non_gsm7(text) is None


def smart_replace(text: str) -> str:
    """`text` with the smart-encoding look-alikes replaced (the result need not be GSM-7)."""
    return text.translate(_SMART_TRANSLATION)


def _costs(text: str, encoding: Encoding) -> list[int]:
    if encoding == "GSM-7":
        out = []
        for i, char in enumerate(text):
            cost = septets(char)
            if cost is None:
                raise EncodingError(char, i)
            out.append(cost)
        return out
    return [utf16_units(char) for char in text]


def _pack(costs: list[int], encoding: Encoding) -> Iterator[tuple[int, int]]:
    """(start, end) character ranges of the parts, never splitting a character's septets/units."""
    single, multi = (GSM7_SINGLE, GSM7_MULTI) if encoding == "GSM-7" else (UCS2_SINGLE, UCS2_MULTI)
    if sum(costs) <= single:
        yield 0, len(costs)
        return
    start, used = 0, 0
    for i, cost in enumerate(costs):
        if used + cost > multi:
            yield start, i
            start, used = i, 0
        used += cost
    yield start, len(costs)


def split_parts(text: str, encoding: Encoding) -> list[str]:
    """The text of each part, as a carrier sends it. Raises `EncodingError` for GSM-7 on non-GSM-7 text."""
    return [text[a:b] for a, b in _pack(_costs(text, encoding), encoding)]


def _analysis(text: str, encoding: Encoding, smart_applied: bool) -> Analysis:
    costs = _costs(text, encoding)
    return Analysis(
        text=text,
        encoding=encoding,
        parts=sum(1 for _ in _pack(costs, encoding)),
        num_chars=len(text),
        smart_encoding_applied=smart_applied,
        septets_or_units=sum(costs),
    )


def analyze(text: str, *, requested: Requested = "auto", smart: bool = False) -> Analysis:
    """Choose the encoding of an outbound SMS text and count its parts.

    `requested` is the API's ``encoding`` field; `smart` is whether smart encoding is enabled
    (it is ignored for ``ucs2``). Raises `EncodingError` when ``gsm7`` is requested and the text
    (after smart encoding) is not GSM-7. See the module docstring for the rules.
    """
    if requested not in ("auto", "gsm7", "ucs2"):
        raise ValueError(f"Unknown encoding {requested!r}; expected 'auto', 'gsm7' or 'ucs2'.")
    if requested == "ucs2":
        return _analysis(text, "UCS-2", False)
    candidate = smart_replace(text) if smart else text
    bad = first_non_gsm7(candidate)
    if bad is None:
        return _analysis(candidate, "GSM-7", candidate != text)
    if requested == "gsm7":
        raise _offender(text, smart) or EncodingError(candidate[bad], bad)
    return _analysis(text, "UCS-2", False)


def _offender(text: str, smart: bool) -> EncodingError | None:
    """The first character that keeps `text` from GSM-7, positioned in the text the client sent."""
    for i, char in enumerate(text):
        if septets(char) is None and not (smart and char in SMART_REPLACEMENTS):
            return EncodingError(char, i)
    return None
