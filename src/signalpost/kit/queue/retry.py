"""The retry policy of jobs and the errors a job handler raises."""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass

log = logging.getLogger("signalpost.queue")

ERROR_MAX_CHARS = 4000

# --- retry policy ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay: float = 0.0


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff: after run `n` fails, wait `min(cap, base * factor**(n-1))`.

    A job runs at most `max_attempts` times (unless `enqueue(..., max_attempts=)` set its own limit).
    `jitter` is the largest fraction of the delay removed at random (0 = deterministic), which spreads
    out retries of jobs that failed together.
    """

    max_attempts: int = 5
    base: float = 1.0
    factor: float = 2.0
    cap: float = 300.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base < 0 or self.cap < 0:
            raise ValueError("base and cap must not be negative")
        if self.factor < 1:
            raise ValueError("factor must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")

    def delay(self, attempt: int) -> float:
        """The backoff after run number `attempt` (1-based) failed, before jitter."""
        try:
            raw = float(self.base) * float(self.factor) ** max(attempt - 1, 0)
        except OverflowError:
            return self.cap
        return self.cap if math.isinf(raw) else min(self.cap, raw)

    def decide(
        self,
        attempt: int,
        *,
        max_attempts: int | None = None,
        rng: random.Random | None = None,
    ) -> RetryDecision:
        """What to do after run number `attempt` (1-based) failed; `max_attempts` overrides ours."""
        limit = max_attempts if max_attempts else self.max_attempts
        if attempt >= limit:
            return RetryDecision(retry=False)
        delay = self.delay(attempt)
        if self.jitter:
            delay -= delay * self.jitter * (rng or random).random()
        return RetryDecision(retry=True, delay=delay)


class JobError(Exception):
    """A job failed in a way that may succeed later; retried per the policy (logged briefly)."""


class PermanentJobError(Exception):
    """A job failed in a way that will not change by retrying; marked failed at once."""


class RetryLater(Exception):
    """Not a failure: run the job again after `delay` seconds without counting an attempt."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"retry in {delay:.3f}s")
        self.delay = max(0.0, delay)


class LeaseLost(Exception):
    """This worker no longer holds the job (its lease ran out and another worker claimed it)."""
