"""Messaging profile metrics computed from stored messages, in the shapes of Telnyx's
`MessagingProfileHighLevelMetrics` (`GET /messaging_profile_metrics`) and
`MessagingProfileDetailedMetrics` (`GET /messaging_profiles/{id}/metrics`).

Over the time frame asked for (`1h`, `3h`, `24h`, `3d`, `7d`, `30d`; default `24h`), by the time a
message was accepted or received: outbound `sent` (handed to the carrier), `delivered`, `failed`
(`sending_failed`, `delivery_failed`, `expired`) and `error_ratio` (failed / outbound), inbound
`received`, and the `spend` (the sum of the messages' costs). The detailed form adds the same
counts per message type in equal time buckets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.engine import RowMapping

from signalpost.kit.clock import iso, utcnow
from signalpost.kit.db import UnitOfWork
from signalpost.kit.errors import bad_parameter
from signalpost.profiles import repository as repo

# Time frame → (its length, the bucket of the detailed form).
TIME_FRAMES: dict[str, tuple[timedelta, timedelta]] = {
    "1h": (timedelta(hours=1), timedelta(minutes=5)),
    "3h": (timedelta(hours=3), timedelta(minutes=15)),
    "24h": (timedelta(hours=24), timedelta(hours=1)),
    "3d": (timedelta(days=3), timedelta(hours=6)),
    "7d": (timedelta(days=7), timedelta(days=1)),
    "30d": (timedelta(days=30), timedelta(days=1)),
}
DEFAULT_TIME_FRAME = "24h"

SENT = frozenset({"sent", "delivered", "delivery_failed", "delivery_unconfirmed", "read"})
DELIVERED = frozenset({"delivered", "read"})
FAILED = frozenset({"sending_failed", "delivery_failed", "expired"})


def time_frame(raw: str | None) -> str:
    """The time frame asked for; 400 (10015) for one Telnyx does not have."""
    if raw is None or raw == "":
        return DEFAULT_TIME_FRAME
    if raw not in TIME_FRAMES:
        raise bad_parameter("time_frame", f"time_frame must be one of: {', '.join(TIME_FRAMES)}.")
    return raw


@dataclass
class Tally:
    outbound: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    received: int = 0
    spend: Decimal = field(default_factory=Decimal)
    currency: str = "USD"

    def add(self, row: RowMapping) -> None:
        status = row["to_status"]
        if row["direction"] == "inbound":
            self.received += 1
        else:
            self.outbound += 1
            self.sent += status in SENT
            self.delivered += status in DELIVERED
            self.failed += status in FAILED
        cost = row["cost"]
        if isinstance(cost, Mapping) and cost.get("amount") is not None:
            try:
                self.spend += Decimal(str(cost["amount"]))
            except InvalidOperation:
                return
            self.currency = str(cost.get("currency") or self.currency)

    @property
    def error_ratio(self) -> float:
        return round(self.failed / self.outbound, 4) if self.outbound else 0.0

    def spend_out(self) -> dict[str, str]:
        return {"amount": f"{self.spend:f}", "currency": self.currency}


def overview(profile_id: str, numbers: int, tally: Tally) -> dict[str, Any]:
    return {
        "record_type": "messaging_profile_metrics",
        "messaging_profile_id": profile_id,
        "phone_numbers": numbers,
        "outbound": {
            "sent": tally.sent,
            "delivered": tally.delivered,
            "failed": tally.failed,
            "error_ratio": tally.error_ratio,
        },
        "inbound": {"received": tally.received},
        "spend": tally.spend_out(),
    }


async def high_level(
    uow: UnitOfWork, org_id: str, profile_ids: list[str], frame: str
) -> list[dict[str, Any]]:
    """One overview per profile, in the order given."""
    since = utcnow() - TIME_FRAMES[frame][0]
    rows = await repo.message_stats_rows(uow, org_id, profile_ids, since)
    numbers = await repo.number_counts(uow, profile_ids)
    tallies = {pid: Tally() for pid in profile_ids}
    for row in rows:
        tallies[row["messaging_profile_id"]].add(row)
    return [overview(pid, numbers.get(pid, 0), tallies[pid]) for pid in profile_ids]


async def detailed(uow: UnitOfWork, org_id: str, profile_id: str, frame: str) -> dict[str, Any]:
    """The overview and, per time bucket (oldest first), the counts per message type."""
    length, step = TIME_FRAMES[frame]
    now = utcnow()
    since = now - length
    rows = await repo.message_stats_rows(uow, org_id, [profile_id], since)
    numbers = await repo.number_counts(uow, [profile_id])
    total = Tally()
    for row in rows:
        total.add(row)
    return {
        "overview": overview(profile_id, numbers.get(profile_id, 0), total),
        "detailed": _buckets(rows, since, step, int(length / step)),
    }


def _buckets(
    rows: Iterable[RowMapping], since: datetime, step: timedelta, count: int
) -> list[dict[str, Any]]:
    per: list[dict[str, Tally]] = [{} for _ in range(count)]
    for row in rows:
        index = min(int((row["received_at"] - since) / step), count - 1)
        if index >= 0:
            per[index].setdefault(row["type"], Tally()).add(row)
    return [
        {
            "timestamp": iso(since + step * i),
            "metrics": [
                {
                    "label": label,
                    "sent": t.sent,
                    "delivered": t.delivered,
                    "failed": t.failed,
                    "outbound_error_ratio": t.error_ratio,
                    "received": t.received,
                    "spend": t.spend_out(),
                }
                for label, t in sorted(tallies.items())
            ],
        }
        for i, tallies in enumerate(per)
    ]
