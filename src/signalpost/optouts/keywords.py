"""Inbound keywords: which messages opt a handset out, back in, or ask for help (pure, no I/O).

A message is a keyword only when the whole message is one. Matching is case-insensitive and ignores
surrounding whitespace, runs of inner whitespace (`stop   all` is `STOP ALL`) and trailing
punctuation (`Stop!`, `stop.`, `UNSUBSCRIBE?!`). A message that merely contains a keyword
("please stop by tomorrow") is not one.

Default keywords, per operation (`op`, as in `autoresp_configs`):

| op      | keywords                                                              | autoresponse_type |
|---------|-----------------------------------------------------------------------|-------------------|
| `stop`  | STOP, STOPALL, STOP ALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT | `STOP`            |
| `start` | START, UNSTOP                                                         | `START`           |
| `info`  | HELP, INFO                                                            | `HELP`            |

Default auto-reply texts (sent from the number the handset wrote to):

- `stop`:  "You have successfully been unsubscribed. You will not receive any more messages from
  this number. Reply START to resubscribe."
- `start`: "You have successfully been re-subscribed to messages from this number. Reply HELP for
  help. Reply STOP to unsubscribe. Msg&Data Rates May Apply."
- `info`:  "Reply STOP to unsubscribe. Reply START to resubscribe. Msg&Data Rates May Apply."

A messaging profile's auto-response configs (`autoresp_configs`: `op`, `keywords`, `country_code`,
`resp_text`) adjust this per country of the handset. A config applies when its `country_code` is the
handset's country, or `*` for every country; a country's own config beats a `*` one. The keywords of
an applicable config are matched before the defaults (they add to them: the default keywords keep
working, as carriers require), and its non-empty `resp_text` replaces the default text of its `op`,
whichever keyword triggered it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Op = Literal["stop", "start", "info"]

DEFAULT_KEYWORDS: dict[Op, tuple[str, ...]] = {
    "stop": (
        "STOP",
        "STOPALL",
        "STOP ALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "REVOKE",
        "OPTOUT",
    ),
    "start": ("START", "UNSTOP"),
    "info": ("HELP", "INFO"),
}

DEFAULT_TEXTS: dict[Op, str] = {
    "stop": (
        "You have successfully been unsubscribed. You will not receive any more messages from "
        "this number. Reply START to resubscribe."
    ),
    "start": (
        "You have successfully been re-subscribed to messages from this number. Reply HELP for "
        "help. Reply STOP to unsubscribe. Msg&Data Rates May Apply."
    ),
    "info": "Reply STOP to unsubscribe. Reply START to resubscribe. Msg&Data Rates May Apply.",
}

# The inbound message's `autoresponse_type` for each operation.
AUTORESPONSE_TYPES: dict[Op, str] = {"stop": "STOP", "start": "START", "info": "HELP"}

ANY_COUNTRY = "*"
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class AutoResponseConfig:
    """One `autoresp_configs` row, as the matcher needs it."""

    op: Op
    keywords: tuple[str, ...]
    country_code: str
    resp_text: str | None = None


@dataclass(frozen=True)
class KeywordMatch:
    op: Op
    keyword: str  # the keyword used, normalised (e.g. "STOP ALL")
    reply: str  # the auto-reply text

    @property
    def autoresponse_type(self) -> str:
        return AUTORESPONSE_TYPES[self.op]


def normalize(text: str) -> str:
    """Upper-case, inner whitespace collapsed, surrounding whitespace and trailing punctuation gone."""
    out = text.strip()
    while out and unicodedata.category(out[-1]).startswith("P"):
        out = out[:-1].rstrip()
    return _SPACES.sub(" ", out).upper()


def applicable(
    configs: Iterable[AutoResponseConfig], country: str | None
) -> list[AutoResponseConfig]:
    """The configs that apply to a handset of `country`: its own country's first, then `*`."""
    wanted = (country or "").upper()
    own = [c for c in configs if wanted and c.country_code.upper() == wanted]
    anywhere = [c for c in configs if c.country_code == ANY_COUNTRY]
    return own + anywhere


def match(
    text: str | None, country: str | None, configs: Sequence[AutoResponseConfig] = ()
) -> KeywordMatch | None:
    """The keyword operation `text` asks for, with its reply text, or None for an ordinary message."""
    if not text:
        return None
    word = normalize(text)
    if not word:
        return None
    usable = applicable(configs, country)
    op: Op | None = None
    for config in usable:
        if word in {normalize(k) for k in config.keywords}:
            op = config.op
            break
    if op is None:
        op = next((o for o, words in DEFAULT_KEYWORDS.items() if word in words), None)
    if op is None:
        return None
    return KeywordMatch(op, word, reply_text(op, usable))


def reply_text(op: Op, usable: Sequence[AutoResponseConfig]) -> str:
    """The first applicable config's non-empty text for `op`, else the default text."""
    for config in usable:
        if config.op == op and config.resp_text and config.resp_text.strip():
            return config.resp_text
    return DEFAULT_TEXTS[op]
