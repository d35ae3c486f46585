"""Per-sender and per-organization throughput, with the state in the database.

Each limiter key holds the earliest time its next message may leave (`next_at`). Accepting a message
reserves the first slot free on every limiter that applies (virtual scheduling): the send job is
scheduled at that slot and the message reports the wait as `wait_seconds`. Because the reservation is
a row update inside the accepting transaction, the limits hold across any number of API and worker
processes on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select, update

from signalpost.kit.db import UnitOfWork
from signalpost.kit.errors import ApiError
from signalpost.models import rate_limits
from signalpost.settings import RateLimits


@dataclass(frozen=True)
class Limiter:
    key: str
    rate: float  # messages per second


@dataclass(frozen=True)
class Reservation:
    at: float  # unix seconds when the message may leave
    backlog: float  # seconds of queue ahead on the busiest limiter, before this message


def for_sender(
    limits: RateLimits, organization_id: str, kind: str, number: str, rate_override: float | None
) -> list[Limiter]:
    """The throughput limits a message from `number` passes: its sender's and its organization's."""
    if not limits.enabled:
        return []
    rate = rate_override or float(getattr(limits, kind))
    return [
        Limiter(f"sender:{kind}:{number}", rate),
        Limiter(f"org:{organization_id}", limits.organization),
    ]


async def backlog(uow: UnitOfWork, limiters: Sequence[Limiter], now: float) -> float:
    """Seconds of queued traffic ahead on the busiest of these limiters."""
    if not limiters:
        return 0.0
    q = select(rate_limits.c.next_at).where(rate_limits.c.key.in_([lim.key for lim in limiters]))
    values = (await uow.conn.execute(q)).scalars().all()
    return max([0.0, *(float(v) - now for v in values)])


async def reserve(uow: UnitOfWork, limiters: Sequence[Limiter], now: float) -> Reservation:
    """Reserve the first slot at or after `now` that every limiter allows."""
    if not limiters:
        return Reservation(now, 0.0)
    keys = [lim.key for lim in limiters]
    q = select(rate_limits.c.key, rate_limits.c.next_at).where(rate_limits.c.key.in_(keys))
    if uow.conn.dialect.name == "postgresql":
        q = q.with_for_update()
    current = {k: v for k, v in (await uow.conn.execute(q)).all()}
    missing = [k for k in keys if k not in current]
    if missing and uow.conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        await uow.conn.execute(
            pg_insert(rate_limits)
            .values([{"key": k, "next_at": 0.0} for k in missing])
            .on_conflict_do_nothing()
        )
        current = {k: v for k, v in (await uow.conn.execute(q)).all()}
    elif missing:
        await uow.conn.execute(insert(rate_limits), [{"key": k, "next_at": 0.0} for k in missing])
        current.update({k: 0.0 for k in missing})
    slot = max([now, *current.values()])
    for lim in limiters:
        await uow.conn.execute(
            update(rate_limits)
            .where(rate_limits.c.key == lim.key)
            .values(next_at=slot + 1.0 / lim.rate)
        )
    return Reservation(slot, max(0.0, slot - now))


async def admit(
    uow: UnitOfWork, limiters: Sequence[Limiter], now: float, max_backlog: float
) -> Reservation:
    """Reserve a slot for a new message, unless the queue ahead is over `max_backlog` s (40318)."""
    ahead = await backlog(uow, limiters, now)
    if ahead > max_backlog:
        raise ApiError(
            429,
            "40318",
            "Message queue full",
            f"The sender's queue already holds {ahead / 3600:.1f} hours of messages.",
            should_retry=False,
            headers={"retry-after": "60"},
        )
    return await reserve(uow, limiters, now)
