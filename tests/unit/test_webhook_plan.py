"""The webhook URL hierarchy, the attempt plan across URLs, the backoff and the body bytes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from signalpost.kit.signing import Signer, generate_key_pair, verify
from signalpost.webhooks.service import (
    USER_AGENT,
    Step,
    body_bytes,
    delay_after,
    event_data,
    next_step,
    request_headers,
    resolve_urls,
)

PROFILE = {"webhook_url": "https://p/hook", "webhook_failover_url": "https://p/fail"}


@pytest.mark.parametrize(
    ("url", "failover", "use_profile", "profile", "expected"),
    [
        (
            "https://m/h",
            "https://m/f",
            True,
            PROFILE,
            ["https://m/h", "https://m/f", *PROFILE.values()],
        ),
        ("https://m/h", None, True, PROFILE, ["https://m/h", "https://p/hook", "https://p/fail"]),
        (None, None, True, PROFILE, ["https://p/hook", "https://p/fail"]),
        ("https://m/h", "https://m/f", False, PROFILE, ["https://m/h", "https://m/f"]),
        (None, None, False, PROFILE, []),
        (None, None, True, None, []),
        ("", "  ", True, {"webhook_url": "", "webhook_failover_url": None}, []),
        ("https://same", "https://same", True, {"webhook_url": "https://same"}, ["https://same"]),
        (None, "https://m/f", True, {}, ["https://m/f"]),
    ],
)
def test_resolve_urls_follows_the_hierarchy(
    url: str | None,
    failover: str | None,
    use_profile: bool,
    profile: dict[str, Any] | None,
    expected: list[str],
) -> None:
    assert resolve_urls(url, failover, use_profile, profile) == expected


URLS = ["https://a", "https://b"]


@pytest.mark.parametrize(
    ("done", "expected"),
    [
        (0, Step(1, "https://a", 0, 1, final=False)),
        (1, Step(2, "https://a", 0, 2, final=False)),
        (2, Step(3, "https://a", 0, 3, final=False)),
        (3, Step(4, "https://b", 1, 1, final=False)),
        (5, Step(6, "https://b", 1, 3, final=True)),
        (6, None),
        (9, None),
    ],
)
def test_next_step_gives_each_url_its_attempts_in_order(done: int, expected: Step | None) -> None:
    assert next_step(done, URLS, 3) == expected


def test_next_step_with_one_attempt_per_url_and_no_urls() -> None:
    assert next_step(0, ["https://a"], 1) == Step(1, "https://a", 0, 1, final=True)
    assert next_step(0, [], 3) is None


@pytest.mark.parametrize(
    ("attempt", "per_url", "base", "delay"),
    [
        (1, 3, 1.0, 1.0),  # after try 1 on a URL: base
        (2, 3, 1.0, 2.0),  # after try 2: base * 2
        (3, 3, 1.0, 0.0),  # the URL had its tries: the failover URL at once
        (4, 3, 1.0, 1.0),  # try 1 on the second URL
        (5, 3, 0.5, 1.0),
        (6, 3, 1.0, 0.0),
        (1, 1, 1.0, 0.0),
        (3, 5, 0.05, 0.2),
    ],
)
def test_backoff_doubles_per_url_and_restarts_on_the_next_url(
    attempt: int, per_url: int, base: float, delay: float
) -> None:
    assert delay_after(attempt, per_url, base) == pytest.approx(delay)


def test_event_envelope_and_bare_envelope() -> None:
    at = datetime(2019, 1, 23, 18, 10, 2, 574000, tzinfo=UTC)
    data = event_data("e-1", "message.sent", {"id": "m-1"}, at, "event")
    assert data == {
        "record_type": "event",
        "id": "e-1",
        "event_type": "message.sent",
        "occurred_at": "2019-01-23T18:10:02.574Z",
        "payload": {"id": "m-1"},
    }
    click = {"record_type": "link_clicked", "message_id": "m-1", "url": "https://x"}
    assert event_data("e-2", "message.link_click", click, at, "bare") == click


def test_body_carries_meta_and_is_signed_over_the_exact_bytes() -> None:
    pair = generate_key_pair()
    body = body_bytes({"id": "e-1", "x": "é"}, 4, "https://b/hook")
    assert orjson.loads(body) == {
        "data": {"id": "e-1", "x": "é"},
        "meta": {"attempt": 4, "delivered_to": "https://b/hook"},
    }
    headers = request_headers(Signer(pair.seed_b64), body)
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("signalpost-webhooks/")
    assert int(headers["telnyx-timestamp"]) > 0
    assert verify(pair.public_b64, body, headers)
    assert not verify(pair.public_b64, body + b" ", headers)
