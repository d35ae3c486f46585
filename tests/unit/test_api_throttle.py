"""The API rate limit's cell rate algorithm (`accounts.throttle`), in memory (as on SQLite)."""

from __future__ import annotations

import asyncio

import pytest

from signalpost.accounts.throttle import ApiThrottle, too_many_requests
from signalpost.kit.db import Database


def _throttle(rate: float, burst: int) -> ApiThrottle:
    return ApiThrottle(Database("sqlite+aiosqlite:///:memory:"), rate, burst)


@pytest.mark.parametrize(
    ("rate", "burst", "times", "refused"),
    [
        # A burst of 3 at once, then one more every half second.
        (2.0, 3, [0, 0, 0, 0], [3]),
        (2.0, 3, [0, 0, 0, 0.5, 0.5], [4]),
        (2.0, 3, [0, 0, 0, 0.5, 1.0, 1.5], []),
        # One per second, no burst.
        (1.0, 1, [0, 0.5, 1.0, 1.2, 2.0], [1, 3]),
    ],
)
def test_admitted_and_refused(
    rate: float, burst: int, times: list[float], refused: list[int]
) -> None:
    throttle = _throttle(rate, burst)

    async def go() -> list[int]:
        out = []
        for i, t in enumerate(times):
            if await throttle._admit_in_memory("k", 1000.0 + t) is not None:
                out.append(i)
        return out

    assert asyncio.run(go()) == refused


def test_the_wait_is_until_one_request_fits() -> None:
    throttle = _throttle(2.0, 3)

    async def go() -> float | None:
        for _ in range(3):
            assert await throttle._admit_in_memory("k", 1000.0) is None
        return await throttle._admit_in_memory("k", 1000.0)

    assert asyncio.run(go()) == pytest.approx(0.5)
    assert asyncio.run(throttle._admit_in_memory("other", 1000.0)) is None  # per key


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert too_many_requests(0.2).headers["Retry-After"] == "1"
    assert too_many_requests(1.2).headers["Retry-After"] == "2"
    err = too_many_requests(0.5)
    assert (err.status, err.code) == (429, "10011")
