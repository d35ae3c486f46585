"""API rate limits per API key (`api_rate_limit` requests per second, `api_rate_burst` at once).

A generic cell rate algorithm: each key has a theoretical arrival time `tat`; a request moves it
`1/rate` seconds on, and is refused while `tat` would run more than `burst/rate` seconds ahead of
now. Refused requests get 429, Telnyx's code 10011, and `Retry-After` (whole seconds until one
request fits again); the Telnyx SDKs wait that long and retry by themselves.

On PostgreSQL the state is a row per key in `rate_limits` (key `api:<hash prefix>`) moved by one
atomic statement, so the limit holds across every API process sharing the database. SQLite serves
one process, whose memory holds the same state without a write per request.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from sqlalchemy import text

from signalpost.kit.db import Database
from signalpost.kit.errors import ApiError

_ADVANCE_PG = text(
    """
    INSERT INTO rate_limits (key, next_at)
    VALUES (CAST(:key AS varchar), CAST(:now AS float8) + CAST(:step AS float8))
    ON CONFLICT (key) DO UPDATE
      SET next_at = GREATEST(rate_limits.next_at, CAST(:now AS float8)) + CAST(:step AS float8)
      WHERE GREATEST(rate_limits.next_at, CAST(:now AS float8)) + CAST(:step AS float8)
        - CAST(:now AS float8) <= CAST(:window AS float8)
    RETURNING next_at
    """
)
_CURRENT_PG = text("SELECT next_at FROM rate_limits WHERE key = :key")


def too_many_requests(retry_after: float) -> ApiError:
    seconds = max(1, math.ceil(retry_after))
    return ApiError(
        429,
        "10011",
        "Too many requests",
        f"This API key is over its rate limit; retry after {seconds} s.",
        should_retry=True,
        headers={"Retry-After": str(seconds)},
    )


@dataclass
class ApiThrottle:
    """Admits or refuses each request of an API key (`admit` raises the 429)."""

    db: Database
    rate: float
    burst: int
    _tat: dict[str, float] = field(default_factory=dict)

    @property
    def step(self) -> float:
        return 1.0 / self.rate

    @property
    def window(self) -> float:
        return self.burst / self.rate

    async def admit(self, key_digest: str) -> None:
        now = time.time()
        wait = (
            await self._admit_in_memory(key_digest, now)
            if self.db.is_sqlite
            else await self._admit_in_database(key_digest, now)
        )
        if wait is not None:
            raise too_many_requests(wait)

    async def _admit_in_memory(self, key: str, now: float) -> float | None:
        tat = max(self._tat.get(key, now), now) + self.step
        if tat - now > self.window:
            return tat - self.window - now
        if len(self._tat) > 100_000:
            self._tat = {k: v for k, v in self._tat.items() if v > now}
        self._tat[key] = tat
        return None

    async def _admit_in_database(self, key: str, now: float) -> float | None:
        params = {"key": f"api:{key[:32]}", "now": now, "step": self.step, "window": self.window}
        async with self.db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            if (await conn.execute(_ADVANCE_PG, params)).first() is not None:
                return None
            current = (await conn.execute(_CURRENT_PG, params)).scalar_one_or_none()
        tat = max(float(current or now), now) + self.step
        return tat - self.window - now
