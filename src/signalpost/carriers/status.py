"""What `signalpost carriers list|status` and `GET /admin/carriers` show: the configured carriers
and routes, and per SMPP bind what its holder last reported (state, holder process, in flight,
submitted and failed counts, last receipt, last error). Never a password."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from signalpost.carriers.smpp import store
from signalpost.kit.clock import utcnow
from signalpost.kit.db import Database
from signalpost.settings import Settings


def _when(ts: Any) -> str | None:
    if ts is None:
        return None
    if isinstance(ts, datetime):
        return ts.isoformat()
    return datetime.fromtimestamp(float(ts), UTC).isoformat()


def configured(settings: Settings) -> dict[str, Any]:
    """The carriers and routes as configured (the simulator always exists)."""
    carriers: list[dict[str, Any]] = [{"name": "simulator", "kind": "simulator", "binds": []}]
    for c in settings.carriers:
        binds = [
            {
                "key": f"{c.name}/{i}",
                "host": b.host,
                "port": b.port,
                "system_id": b.system_id,
                "bind_mode": b.bind_mode,
                "window": b.window,
                "messages_per_second": b.messages_per_second,
            }
            for i, b in enumerate(c.binds)
        ]
        entry = {"name": c.name, "kind": c.kind, "fallback": c.fallback, "binds": binds}
        if c.name == "simulator":
            carriers[0] = entry
        else:
            carriers.append(entry)
    return {
        "default_carrier": settings.effective_default_carrier,
        "carriers": carriers,
        "routes": [r.model_dump(exclude_none=True) for r in settings.routes],
    }


async def bind_status(settings: Settings, db: Database) -> list[dict[str, Any]]:
    """Every configured SMPP bind with its lease and its holder's last report."""
    async with db.transaction() as uow:
        rows = {r["key"]: r for r in await store.binds(uow)}
    now = utcnow()
    out = []
    for carrier in configured(settings)["carriers"]:
        for bind in carrier["binds"]:
            row = rows.get(bind["key"])
            stats: dict[str, Any] = dict(row["stats"] or {}) if row is not None else {}
            alive = bool(
                row is not None
                and row["holder"]
                and row["lease_until"] is not None
                and row["lease_until"] >= now
            )
            held = row if alive else None
            out.append(
                {
                    "bind": bind["key"],
                    "carrier": carrier["name"],
                    "address": f"{bind['host']}:{bind['port']}",
                    "system_id": bind["system_id"],
                    "state": held["state"] if held is not None else "unheld",
                    "holder": held["holder"] if held is not None else None,
                    "lease_until": _when(held["lease_until"]) if held is not None else None,
                    "window": bind["window"],
                    "in_flight": stats.get("in_flight", 0) if alive else 0,
                    "submitted": stats.get("submitted", 0),
                    "failed": stats.get("failed", 0),
                    "throttled": stats.get("throttled", 0),
                    "receipts": stats.get("receipts", 0),
                    "inbound": stats.get("inbound", 0),
                    "last_receipt_at": _when(stats.get("last_receipt_at")),
                    "last_error": stats.get("last_error"),
                    "last_error_at": _when(stats.get("last_error_at")),
                }
            )
    return out
