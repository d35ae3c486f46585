"""Keyword matching for inbound messages: variants, non-keywords, per-country configs."""

from __future__ import annotations

import pytest

from signalpost.optouts.keywords import (
    DEFAULT_KEYWORDS,
    DEFAULT_TEXTS,
    AutoResponseConfig,
    match,
    normalize,
)


@pytest.mark.parametrize(
    ("text", "op", "keyword"),
    [
        ("STOP", "stop", "STOP"),
        ("stop", "stop", "STOP"),
        ("  Stop  ", "stop", "STOP"),
        ("Stop!", "stop", "STOP"),
        ("stop.", "stop", "STOP"),
        ("STOP!!!", "stop", "STOP"),
        ("stop !", "stop", "STOP"),
        ("\tstop\n", "stop", "STOP"),
        ("stopall", "stop", "STOPALL"),
        ("Stop All", "stop", "STOP ALL"),
        ("stop   all.", "stop", "STOP ALL"),
        ("unsubscribe", "stop", "UNSUBSCRIBE"),
        ("Cancel", "stop", "CANCEL"),
        ("end", "stop", "END"),
        ("QUIT?", "stop", "QUIT"),
        ("revoke", "stop", "REVOKE"),
        ("OptOut", "stop", "OPTOUT"),
        ("start", "start", "START"),
        ("Unstop!", "start", "UNSTOP"),
        ("help", "info", "HELP"),
        ("Help?", "info", "HELP"),
        ("info", "info", "INFO"),
    ],
)
def test_keyword_variants(text: str, op: str, keyword: str) -> None:
    found = match(text, "US")
    assert found is not None
    assert (found.op, found.keyword) == (op, keyword)
    assert found.reply == DEFAULT_TEXTS[found.op]


@pytest.mark.parametrize(
    "text",
    [
        "please stop by tomorrow",
        "stop it",
        "don't stop",
        "STOPP",
        "opt out",  # not in the list (OPTOUT is)
        "...stop",  # only trailing punctuation is ignored
        "help me",
        "starting now",
        "",
        "   ",
        "!!!",
        None,
    ],
)
def test_non_keywords(text: str | None) -> None:
    assert match(text, "US") is None


def test_autoresponse_types() -> None:
    assert [match(t, "US").autoresponse_type for t in ("stop", "start", "help")] == [  # type: ignore[union-attr]
        "STOP",
        "START",
        "HELP",
    ]


def test_every_default_keyword_matches_its_op() -> None:
    for op, words in DEFAULT_KEYWORDS.items():
        for word in words:
            found = match(word.lower() + ".", None)
            assert found is not None and found.op == op


def test_normalize() -> None:
    assert normalize("  stop \t all !? ") == "STOP ALL"
    assert normalize("¿stop¡") == "¿STOP"


CONFIGS = [
    AutoResponseConfig("stop", ("ARRET",), "CA", "Vous êtes désabonné."),
    AutoResponseConfig("info", ("AIDE",), "*", "Help for everyone."),
    AutoResponseConfig("start", ("GO",), "GB", None),
]


def test_config_text_replaces_default_for_its_country_only() -> None:
    ca = match("STOP", "CA", CONFIGS)
    us = match("STOP", "US", CONFIGS)
    assert ca is not None and ca.reply == "Vous êtes désabonné."
    assert us is not None and us.reply == DEFAULT_TEXTS["stop"]


def test_config_keywords_add_to_defaults() -> None:
    found = match("arret!", "CA", CONFIGS)
    assert found is not None and (found.op, found.keyword) == ("stop", "ARRET")
    assert match("arret", "US", CONFIGS) is None  # the CA config does not apply to US handsets


def test_wildcard_config_applies_everywhere() -> None:
    for country in ("US", "CA", None):
        found = match("aide", country, CONFIGS)
        assert found is not None and found.op == "info" and found.reply == "Help for everyone."
    found = match("HELP", "GB", CONFIGS)
    assert found is not None and found.reply == "Help for everyone."


def test_country_config_beats_wildcard() -> None:
    configs = [
        AutoResponseConfig("info", ("HELP",), "*", "anywhere"),
        AutoResponseConfig("info", ("HELP",), "US", "in the US"),
    ]
    assert match("help", "US", configs).reply == "in the US"  # type: ignore[union-attr]
    assert match("help", "FR", configs).reply == "anywhere"  # type: ignore[union-attr]


def test_config_without_text_keeps_default_text() -> None:
    found = match("go", "GB", CONFIGS)
    assert found is not None and found.op == "start" and found.reply == DEFAULT_TEXTS["start"]


def test_config_can_move_a_word_to_another_op() -> None:
    configs = [AutoResponseConfig("info", ("CANCEL",), "US", "What do you need?")]
    found = match("cancel", "US", configs)
    assert found is not None and found.op == "info"
    other = match("cancel", "GB", configs)
    assert other is not None and other.op == "stop"
