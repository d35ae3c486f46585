"""An event waiting for an earlier event of its message is looked at again when that one's next
attempt is due, or, when that is not known, soon at first and less often the longer it waits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from signalpost.webhooks.jobs import BLOCKED_RECHECK, BLOCKED_RECHECK_MAX, blocked_delay
from signalpost.webhooks.service import DeliveryConfig

CONFIG = DeliveryConfig(timeout=2.0, attempts_per_url=3, retry_base=1.0)
NOW = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)


def _blocker(waited: float, attempts: int = 0, last_finished: float | None = None) -> Any:
    return {
        "occurred_at": NOW - timedelta(seconds=waited),
        "attempts": attempts,
        "last_attempt_finished_at": (
            NOW - timedelta(seconds=last_finished) if last_finished is not None else None
        ),
    }


def test_a_fresh_blocker_is_looked_at_again_soon() -> None:
    assert blocked_delay(_blocker(0.01), CONFIG, NOW.timestamp()) == BLOCKED_RECHECK


@pytest.mark.parametrize(("waited", "expected"), [(30.0, 3.0), (100.0, BLOCKED_RECHECK_MAX)])
def test_a_blocker_put_off_for_long_is_looked_at_less_often(waited: float, expected: float) -> None:
    # Never tried: its POSTs were put off (a slow receiver); before, its message's later events
    # were claimed and put back every 50 ms for as long as it waited.
    assert blocked_delay(_blocker(waited), CONFIG, NOW.timestamp()) == pytest.approx(expected)


def test_a_blocker_with_an_attempt_due_is_waited_for_until_then() -> None:
    # one failed attempt 0.5 s ago: the next is due 1 s after it (retry_base)
    blocker = _blocker(100.0, attempts=1, last_finished=0.5)
    assert blocked_delay(blocker, CONFIG, NOW.timestamp()) == pytest.approx(0.5)
