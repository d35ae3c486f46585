"""The SQL behind the scrape-time metrics: aggregates over messages, jobs and attempts.

They run in a read-only transaction (`Database.read`), never in a unit of work: on SQLite a scrape
then takes no write turn and no write lock, so its scans never hold up sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, case, func, select

from signalpost.models import jobs, messages, rate_limits, webhook_attempts

# Webhook latency buckets, in seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class QueueKind:
    depth: dict[str, int] = field(default_factory=dict)  # by job status
    oldest_due: datetime | None = None  # the earliest run_at of a queued job that is due


@dataclass
class AttemptStats:
    count: int = 0
    latency_sum: float = 0.0  # seconds
    buckets: list[int] = field(default_factory=list)  # cumulative, one per LATENCY_BUCKETS


@dataclass
class Snapshot:
    """Everything a scrape reads from the database, read in one transaction."""

    messages: list[tuple[str, str, str, int]]
    queue: dict[str, QueueKind]
    attempts: dict[str, AttemptStats]
    rate_limit_waits: tuple[int, float]
    rate_limit_backlogs: Sequence[tuple[str, float]]


def snapshot(conn: Connection, now: datetime, now_seconds: float) -> Snapshot:
    return Snapshot(
        messages=message_counts(conn),
        queue=queue_state(conn, now),
        attempts=webhook_attempt_stats(conn),
        rate_limit_waits=rate_limit_waits(conn),
        rate_limit_backlogs=rate_limit_backlogs(conn, now_seconds),
    )


def message_counts(conn: Connection) -> list[tuple[str, str, str, int]]:
    """(direction, status, carrier, count) over every stored message."""
    q = select(
        messages.c.direction, messages.c.to_status, messages.c.to_carrier, func.count()
    ).group_by(messages.c.direction, messages.c.to_status, messages.c.to_carrier)
    return [(d, s, c or "", int(n)) for d, s, c, n in conn.execute(q).all()]


def queue_state(conn: Connection, now: datetime) -> dict[str, QueueKind]:
    q = select(
        jobs.c.kind,
        jobs.c.status,
        func.count(),
        func.min(case((jobs.c.run_at <= now, jobs.c.run_at), else_=None)),
    ).group_by(jobs.c.kind, jobs.c.status)
    out: dict[str, QueueKind] = {}
    for kind, status, count, oldest in conn.execute(q).all():
        entry = out.setdefault(kind, QueueKind())
        entry.depth[status] = int(count)
        if status == "queued" and oldest is not None:
            entry.oldest_due = _as_datetime(oldest)
    return out


def _as_datetime(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):  # SQLite hands back aggregates of text columns untyped
        from signalpost.kit.clock import parse_datetime

        return parse_datetime(value)
    return None


def _result() -> object:
    code = webhook_attempts.c.status_code
    return case(
        (code.is_(None), "error"),
        ((code >= 200) & (code < 300), "success"),
        else_="http_error",
    )


def webhook_attempt_stats(conn: Connection) -> dict[str, AttemptStats]:
    """Attempts by result (`success`, `http_error`, `error`) with their latency distribution."""
    result = _result().label("result")  # type: ignore[attr-defined]
    latency = func.coalesce(webhook_attempts.c.latency_ms, 0.0)
    columns = [
        result,
        func.count(),
        func.coalesce(func.sum(latency), 0.0),
        *(func.sum(case((latency <= bound * 1000.0, 1), else_=0)) for bound in LATENCY_BUCKETS),
    ]
    q = select(*columns).group_by(result)
    out: dict[str, AttemptStats] = {}
    for row in conn.execute(q).all():
        out[str(row[0])] = AttemptStats(
            count=int(row[1]),
            latency_sum=float(row[2]) / 1000.0,
            buckets=[int(v or 0) for v in row[3:]],
        )
    return out


def rate_limit_waits(conn: Connection) -> tuple[int, float]:
    """Messages that waited for a throughput slot, and their total wait in seconds."""
    q = select(func.count(), func.coalesce(func.sum(messages.c.wait_seconds), 0.0)).where(
        messages.c.wait_seconds > 0
    )
    count, total = conn.execute(q).one()
    return int(count), float(total)


def rate_limit_backlogs(conn: Connection, now: float) -> Sequence[tuple[str, float]]:
    """(limiter kind, seconds of queue ahead) of the limiters that have a backlog."""
    q = select(rate_limits.c.key, rate_limits.c.next_at).where(rate_limits.c.next_at > now)
    worst: dict[str, float] = {}
    for key, next_at in conn.execute(q).all():
        scope, _, rest = str(key).partition(":")
        if scope not in ("sender", "org"):
            continue  # e.g. `api:` rows: API rate limits per key (accounts.throttle), not sends
        kind = rest.split(":", 1)[0] if scope == "sender" else "organization"
        worst[kind] = max(worst.get(kind, 0.0), float(next_at) - now)
    return sorted(worst.items())
