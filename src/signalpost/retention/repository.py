"""SQL of the retention sweep: each call deletes at most `limit` rows older than a cutoff.

Every delete picks its rows through an index (per organization where the index starts with it) and
takes them with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so sweeps in several processes never wait
on each other or on the rows a request is writing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, text, tuple_

from signalpost.kit.db import UnitOfWork
from signalpost.models import (
    idempotency_keys,
    jobs,
    link_clicks,
    messages,
    organizations,
    webhook_attempts,
    webhook_events,
)


async def organization_ids(uow: UnitOfWork) -> list[str]:
    return list((await uow.conn.execute(select(organizations.c.id))).scalars())


async def purge_webhook_events(uow: UnitOfWork, org_id: str, cutoff: datetime, limit: int) -> int:
    """Events that occurred before `cutoff`, with their attempts."""
    e = webhook_events.c
    picked = (
        select(e.id)
        .where(e.organization_id == org_id, e.occurred_at < cutoff)
        .order_by(e.occurred_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await uow.conn.execute(picked)).scalars())
    if not ids:
        return 0
    await uow.conn.execute(delete(webhook_attempts).where(webhook_attempts.c.event_id.in_(ids)))
    await uow.conn.execute(delete(webhook_events).where(e.id.in_(ids)))
    return len(ids)


async def purge_messages(uow: UnitOfWork, org_id: str, cutoff: datetime, limit: int) -> int:
    """Messages received before `cutoff`."""
    m = messages.c
    picked = (
        select(m.id)
        .where(m.organization_id == org_id, m.received_at < cutoff)
        .order_by(m.received_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await uow.conn.execute(picked)).scalars())
    if ids:
        await uow.conn.execute(delete(messages).where(m.id.in_(ids)))
    return len(ids)


async def purge_failed_jobs(uow: UnitOfWork, cutoff: datetime, limit: int) -> int:
    """Jobs that failed for good (finished ones are deleted when they finish) before `cutoff`."""
    picked = (
        select(jobs.c.id)
        .where(jobs.c.status == "failed", jobs.c.run_at < cutoff)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await uow.conn.execute(picked)).scalars())
    if ids:
        await uow.conn.execute(delete(jobs).where(jobs.c.id.in_(ids)))
    return len(ids)


async def purge_idempotency_keys(uow: UnitOfWork, cutoff: datetime, limit: int) -> int:
    k = idempotency_keys.c
    picked = (
        select(k.organization_id, k.key)
        .where(k.created_at < cutoff)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    keys = [tuple(row) for row in await uow.conn.execute(picked)]
    if keys:
        await uow.conn.execute(
            delete(idempotency_keys).where(tuple_(k.organization_id, k.key).in_(keys))
        )
    return len(keys)


async def purge_link_clicks(uow: UnitOfWork, cutoff: datetime, limit: int) -> int:
    c = link_clicks.c
    picked = (
        select(c.id).where(c.clicked_at < cutoff).limit(limit).with_for_update(skip_locked=True)
    )
    ids = list((await uow.conn.execute(picked)).scalars())
    if ids:
        await uow.conn.execute(delete(link_clicks).where(c.id.in_(ids)))
    return len(ids)


async def incremental_vacuum(uow: UnitOfWork, pages: int) -> int:
    """SQLite: give up to `pages` free pages back to the file system (a database created with
    `auto_vacuum=INCREMENTAL`; otherwise nothing happens). Returns the free pages left over (0
    when auto-vacuum is off: nothing can be given back)."""
    mode = (await uow.conn.execute(text("PRAGMA auto_vacuum"))).scalar_one()
    if mode != 2:  # 2: incremental
        return 0
    await uow.conn.execute(text(f"PRAGMA incremental_vacuum({int(pages)})"))
    return int((await uow.conn.execute(text("PRAGMA freelist_count"))).scalar_one())
