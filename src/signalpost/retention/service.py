"""The retention sweep: what is older than `retention_days` goes, a small batch per transaction.

Messages, webhook events with their attempts, jobs that failed for good, idempotency records (also
once past `idempotency_ttl_seconds`, when they no longer have any effect) and link clicks older than
the retention period are deleted in batches of `retention_batch` rows, each batch
its own short transaction taking its turn as background work (`kit.db.WriteTurns` on SQLite), so
sends are never held up behind a long delete. On SQLite the freed pages are then given back to the
file system (`PRAGMA incremental_vacuum`). Every process that runs workers sweeps every
`retention_interval` seconds; on PostgreSQL their batches skip each other's rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from signalpost.kit.clock import utcnow
from signalpost.kit.db import Database, UnitOfWork, background_work
from signalpost.retention import repository as repo
from signalpost.settings import Settings

log = logging.getLogger("signalpost.retention")

VACUUM_PAGES = 2000  # pages given back per transaction (8 MB of 4 KB pages)


async def _drain(db: Database, step: Callable[[UnitOfWork], Awaitable[int]], limit: int) -> int:
    """Run `step` in its own transaction until it deletes fewer than `limit` rows."""
    total = 0
    while True:
        async with db.transaction() as uow:
            n = await step(uow)
        total += n
        if n < limit:
            return total
        await asyncio.sleep(0)  # let requests in between batches


async def purge(
    db: Database, cutoff: datetime, batch: int, idempotency_cutoff: datetime | None = None
) -> dict[str, int]:
    """Delete everything older than `cutoff` (idempotency records: older than
    `idempotency_cutoff` when later, i.e. once they no longer have any effect); the rows deleted,
    per kind."""
    keys_cutoff = max(cutoff, idempotency_cutoff or cutoff)
    async with db.transaction() as uow:
        orgs = await repo.organization_ids(uow)
    counts = {"webhook_events": 0, "messages": 0}
    for org in orgs:
        counts["webhook_events"] += await _drain(
            db,
            functools.partial(repo.purge_webhook_events, org_id=org, cutoff=cutoff, limit=batch),
            batch,
        )
        counts["messages"] += await _drain(
            db,
            functools.partial(repo.purge_messages, org_id=org, cutoff=cutoff, limit=batch),
            batch,
        )
    counts["jobs"] = await _drain(db, lambda u: repo.purge_failed_jobs(u, cutoff, batch), batch)
    counts["idempotency_keys"] = await _drain(
        db, lambda u: repo.purge_idempotency_keys(u, keys_cutoff, batch), batch
    )
    counts["link_clicks"] = await _drain(
        db, lambda u: repo.purge_link_clicks(u, cutoff, batch), batch
    )
    if db.is_sqlite and any(counts.values()):
        while True:
            async with db.transaction() as uow:
                left = await repo.incremental_vacuum(uow, VACUUM_PAGES)
            if left == 0:
                break
            await asyncio.sleep(0)
    return counts


async def sweep_forever(db: Database, settings: Settings, stop: asyncio.Event) -> None:
    """Purge every `retention_interval` seconds until `stop` is set (nothing when retention is 0)."""
    if settings.retention_days <= 0:
        return
    background_work.set(True)
    while not stop.is_set():
        now = utcnow()
        cutoff = now - timedelta(days=settings.retention_days)
        expired = now - timedelta(seconds=settings.idempotency_ttl_seconds)
        try:
            counts = await purge(db, cutoff, settings.retention_batch, expired)
            if any(counts.values()):
                log.info("retention: purged %s (older than %s)", counts, cutoff.isoformat())
        except Exception:
            log.exception("retention sweep failed; trying again at the next interval")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.retention_interval)
