"""All SQL of the SMPP carrier: bind leases, the part correlator, inbound reassembly, duplicates."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.sql.dml import Insert

from signalpost.kit.db import UnitOfWork
from signalpost.models import smpp_binds, smpp_mo_parts, smpp_parts, smpp_seen


def _insert_ignore(uow: UnitOfWork, table: Any) -> Insert:
    if uow.conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


# --- leases -------------------------------------------------------------------------------------


async def ensure_binds(uow: UnitOfWork, keys: Mapping[str, str], now: datetime) -> None:
    """A row per configured bind (`key → carrier`), for the leases."""
    rows = [
        {"key": k, "carrier": c, "state": "stopped", "holder": None, "updated_at": now}
        for k, c in keys.items()
    ]
    if rows:
        await uow.conn.execute(_insert_ignore(uow, smpp_binds), rows)


async def take_lease(
    uow: UnitOfWork, key: str, holder: str, now: datetime, until: datetime
) -> bool:
    """Take or renew the lease of a bind: free, expired, or already ours."""
    free = or_(
        smpp_binds.c.holder == holder,
        smpp_binds.c.holder.is_(None),
        smpp_binds.c.lease_until < now,
    )
    result = await uow.conn.execute(
        update(smpp_binds)
        .where(smpp_binds.c.key == key, free)
        .values(holder=holder, lease_until=until, updated_at=now)
    )
    return bool(result.rowcount)


async def report(
    uow: UnitOfWork,
    key: str,
    holder: str,
    now: datetime,
    until: datetime,
    state: str,
    stats: Mapping[str, Any],
) -> bool:
    """Renew our lease and record the bind's state; False when the lease is no longer ours."""
    result = await uow.conn.execute(
        update(smpp_binds)
        .where(smpp_binds.c.key == key, smpp_binds.c.holder == holder)
        .values(lease_until=until, state=state, stats=dict(stats), updated_at=now)
    )
    return bool(result.rowcount)


async def release(uow: UnitOfWork, key: str, holder: str, now: datetime) -> None:
    await uow.conn.execute(
        update(smpp_binds)
        .where(smpp_binds.c.key == key, smpp_binds.c.holder == holder)
        .values(holder=None, lease_until=None, state="stopped", updated_at=now)
    )


async def binds(uow: UnitOfWork) -> list[RowMapping]:
    result = await uow.conn.execute(select(smpp_binds).order_by(smpp_binds.c.key))
    return list(result.mappings())


async def bound_carriers(uow: UnitOfWork, now: datetime) -> set[str]:
    """Carriers with a bind some live process holds bound (for fallback routing)."""
    q = select(smpp_binds.c.carrier).where(
        smpp_binds.c.state == "bound", smpp_binds.c.lease_until >= now
    )
    return {row[0] for row in await uow.conn.execute(q)}


# --- the part correlator --------------------------------------------------------------------------


async def accepted_parts(uow: UnitOfWork, message_ids: Sequence[str]) -> dict[str, dict[int, str]]:
    """The parts of these messages an SMSC already accepted (not to submit again): part → id."""
    if not message_ids:
        return {}
    q = select(smpp_parts.c.message_id, smpp_parts.c.part, smpp_parts.c.carrier_message_id).where(
        smpp_parts.c.message_id.in_(list(message_ids))
    )
    out: dict[str, dict[int, str]] = {}
    for message_id, part, carrier_id in await uow.conn.execute(q):
        out.setdefault(message_id, {})[part] = carrier_id
    return out


async def insert_parts(uow: UnitOfWork, rows: Sequence[Mapping[str, Any]]) -> None:
    """Correlator rows of accepted parts. An id the carrier used before (for an older message)
    now means this one."""
    if not rows:
        return
    keys = [(r["carrier"], r["carrier_message_id"]) for r in rows]
    await uow.conn.execute(
        delete(smpp_parts).where(
            tuple_(smpp_parts.c.carrier, smpp_parts.c.carrier_message_id).in_(keys)
        )
    )
    await uow.conn.execute(smpp_parts.insert(), [dict(r) for r in rows])


async def find_parts(
    uow: UnitOfWork, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], RowMapping]:
    """The correlator rows of `(carrier, carrier_message_id)` keys (unknown ones left out)."""
    if not keys:
        return {}
    q = select(smpp_parts).where(
        tuple_(smpp_parts.c.carrier, smpp_parts.c.carrier_message_id).in_(sorted(set(keys)))
    )
    return {
        (row["carrier"], row["carrier_message_id"]): row
        for row in (await uow.conn.execute(q)).mappings()
    }


_PART_KEY = (("_carrier", "carrier"), ("_id", "carrier_message_id"))


async def set_part_statuses(
    uow: UnitOfWork, changes: Sequence[tuple[str, str, str, str | None]]
) -> None:
    """`(carrier, carrier_message_id, status, error_code)` from receipts, in one statement."""
    rows = [
        {"_carrier": c, "_id": i, "status": status, "error_code": code}
        for c, i, status, code in changes
    ]
    await uow.conn.update_many(smpp_parts, _PART_KEY, rows)


async def parts_of(uow: UnitOfWork, message_ids: Sequence[str]) -> dict[str, list[RowMapping]]:
    if not message_ids:
        return {}
    q = select(smpp_parts).where(smpp_parts.c.message_id.in_(list(message_ids)))
    out: dict[str, list[RowMapping]] = {}
    for row in (await uow.conn.execute(q)).mappings():
        out.setdefault(row["message_id"], []).append(row)
    return out


async def expire_parts(uow: UnitOfWork, now: datetime, limit: int = 500) -> list[str]:
    """Parts past their message's validity without a receipt become `delivery_unconfirmed`;
    returns their messages."""
    q = (
        select(smpp_parts.c.carrier, smpp_parts.c.carrier_message_id, smpp_parts.c.message_id)
        .where(smpp_parts.c.expires_at < now, smpp_parts.c.status == "sent")
        .limit(limit)
    )
    rows = list(await uow.conn.execute(q))
    if not rows:
        return []
    await uow.conn.execute(
        update(smpp_parts)
        .where(
            tuple_(smpp_parts.c.carrier, smpp_parts.c.carrier_message_id).in_(
                [(r[0], r[1]) for r in rows]
            )
        )
        .values(status="delivery_unconfirmed")
    )
    return sorted({r[2] for r in rows})


# --- inbound: duplicates and reassembly ---------------------------------------------------------


async def first_sighting(uow: UnitOfWork, digest: str, now: datetime, until: datetime) -> bool:
    """Whether this inbound PDU digest is new (and remember it until `until`)."""
    q = select(smpp_seen.c.expires_at).where(smpp_seen.c.digest == digest)
    seen = (await uow.conn.execute(q)).scalar_one_or_none()
    if seen is not None and seen >= now:
        return False
    await uow.conn.execute(delete(smpp_seen).where(smpp_seen.c.digest == digest))
    await uow.conn.execute(smpp_seen.insert().values(digest=digest, expires_at=until))
    return True


async def lock_mo(uow: UnitOfWork, key: str) -> None:
    """Serialize the transactions adding parts of one inbound message (PostgreSQL: an advisory
    lock until the transaction ends; SQLite has a single writer already), so that the one adding
    the last part sees all the others."""
    if uow.conn.dialect.name == "postgresql":
        number = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
        await uow.conn.execute(select(func.pg_advisory_xact_lock(number)))


async def add_mo_part(uow: UnitOfWork, row: Mapping[str, Any]) -> None:
    await uow.conn.execute(_insert_ignore(uow, smpp_mo_parts), [dict(row)])


async def mo_parts(uow: UnitOfWork, key: str) -> list[RowMapping]:
    q = select(smpp_mo_parts).where(smpp_mo_parts.c.key == key).order_by(smpp_mo_parts.c.seq)
    return list((await uow.conn.execute(q)).mappings())


async def close_mo(uow: UnitOfWork, key: str) -> int:
    """Mark a message's parts done; the number this call changed (0: another run was first)."""
    result = await uow.conn.execute(
        update(smpp_mo_parts)
        .where(smpp_mo_parts.c.key == key, smpp_mo_parts.c.done.is_(False))
        .values(done=True)
    )
    return int(result.rowcount)


async def stale_mo_keys(uow: UnitOfWork, before: datetime, limit: int = 100) -> list[str]:
    q = (
        select(smpp_mo_parts.c.key)
        .where(smpp_mo_parts.c.done.is_(False))
        .group_by(smpp_mo_parts.c.key)
        .having(func.min(smpp_mo_parts.c.received_at) < before)
        .limit(limit)
    )
    return [row[0] for row in await uow.conn.execute(q)]


async def cleanup(uow: UnitOfWork, now: datetime, settled_before: datetime) -> None:
    """Forget what has served: old digests, finished reassemblies, final parts long settled."""
    await uow.conn.execute(delete(smpp_seen).where(smpp_seen.c.expires_at < now))
    await uow.conn.execute(
        delete(smpp_mo_parts).where(
            and_(smpp_mo_parts.c.done.is_(True), smpp_mo_parts.c.expires_at < now)
        )
    )
    await uow.conn.execute(
        delete(smpp_parts).where(
            smpp_parts.c.status != "sent", smpp_parts.c.created_at < settled_before
        )
    )
