"""`RetryPolicy.decide`: capped exponential backoff, no retry after the last attempt, jitter bounds."""

from __future__ import annotations

import random

import pytest

from signalpost.kit.queue import RetryDecision, RetryPolicy


@pytest.mark.parametrize(
    ("policy", "attempt", "expected"),
    [
        # base * factor ** (attempt - 1)
        (RetryPolicy(max_attempts=5, base=1, factor=2, cap=300), 1, RetryDecision(True, 1.0)),
        (RetryPolicy(max_attempts=5, base=1, factor=2, cap=300), 2, RetryDecision(True, 2.0)),
        (RetryPolicy(max_attempts=5, base=1, factor=2, cap=300), 4, RetryDecision(True, 8.0)),
        (RetryPolicy(max_attempts=9, base=0.5, factor=3, cap=300), 3, RetryDecision(True, 4.5)),
        # the cap
        (RetryPolicy(max_attempts=10, base=1, factor=2, cap=5), 3, RetryDecision(True, 4.0)),
        (RetryPolicy(max_attempts=10, base=1, factor=2, cap=5), 4, RetryDecision(True, 5.0)),
        (RetryPolicy(max_attempts=10, base=1, factor=2, cap=5), 9, RetryDecision(True, 5.0)),
        # a huge exponent still gives the cap, never an overflow
        (
            RetryPolicy(max_attempts=100_000, base=1, factor=10, cap=60),
            5000,
            RetryDecision(True, 60),
        ),
        # constant delay
        (RetryPolicy(max_attempts=3, base=7, factor=1, cap=300), 2, RetryDecision(True, 7.0)),
        (RetryPolicy(max_attempts=3, base=0, factor=2, cap=300), 1, RetryDecision(True, 0.0)),
        # the last attempt (and anything beyond it) is not retried
        (RetryPolicy(max_attempts=5), 5, RetryDecision(False)),
        (RetryPolicy(max_attempts=5), 6, RetryDecision(False)),
        (RetryPolicy(max_attempts=1), 1, RetryDecision(False)),
        (RetryPolicy(max_attempts=2), 1, RetryDecision(True, 1.0)),
    ],
)
def test_decide(policy: RetryPolicy, attempt: int, expected: RetryDecision) -> None:
    assert policy.decide(attempt) == expected


@pytest.mark.parametrize(
    ("policy_max", "override", "attempt", "retry"),
    [
        (5, 3, 2, True),
        (5, 3, 3, False),
        (2, 4, 2, True),
        (2, 4, 4, False),
        (3, None, 3, False),
        (3, 0, 2, True),  # 0 = not set: the policy's limit
    ],
)
def test_the_jobs_own_limit_overrides_the_policy(
    policy_max: int, override: int | None, attempt: int, retry: bool
) -> None:
    decision = RetryPolicy(max_attempts=policy_max).decide(attempt, max_attempts=override)
    assert decision.retry is retry


@pytest.mark.parametrize(
    ("jitter", "attempt", "low", "high"),
    [
        (0.5, 1, 5.0, 10.0),
        (0.5, 3, 20.0, 40.0),
        (0.25, 2, 15.0, 20.0),
        (1.0, 1, 0.0, 10.0),
        (0.5, 8, 50.0, 100.0),  # capped at 100 first, then jittered
    ],
)
def test_jitter_stays_within_its_bounds(
    jitter: float, attempt: int, low: float, high: float
) -> None:
    policy = RetryPolicy(max_attempts=10, base=10, factor=2, cap=100, jitter=jitter)
    rng = random.Random(1234)
    delays = [policy.decide(attempt, rng=rng).delay for _ in range(500)]
    assert all(low <= d <= high for d in delays), (min(delays), max(delays))
    # it really varies, over most of the allowed range
    assert max(delays) - min(delays) > 0.8 * (high - low)


def test_jitter_extremes_of_the_random_source() -> None:
    class Fixed(random.Random):
        def __init__(self, value: float) -> None:
            super().__init__()
            self.value = value

        def random(self) -> float:
            return self.value

    policy = RetryPolicy(max_attempts=10, base=8, factor=2, cap=100, jitter=0.5)
    assert policy.decide(1, rng=Fixed(0.0)).delay == 8.0
    assert policy.decide(1, rng=Fixed(0.999999)).delay == pytest.approx(4.0, abs=1e-4)


def test_no_jitter_is_deterministic() -> None:
    policy = RetryPolicy(max_attempts=10, base=3, factor=2, cap=100)
    assert {policy.decide(3, rng=random.Random(seed)).delay for seed in range(20)} == {12.0}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"base": -1},
        {"cap": -1},
        {"factor": 0.5},
        {"jitter": -0.1},
        {"jitter": 1.5},
    ],
)
def test_invalid_policies_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
