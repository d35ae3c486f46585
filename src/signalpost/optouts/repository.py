"""SQL for opt-outs, and the lookups keyword handling needs (number owners, auto-response configs).

The `optouts` columns name the addresses of the opt-out message itself: `from_number` is the
handset that wrote STOP, `to_number` the number it wrote to. The API shows the blocked direction
instead (`from` = our number, `to` = the handset; see `schemas.optout_view`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, delete, exists, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping

from signalpost.kit.db import UnitOfWork
from signalpost.models import (
    autoresp_configs,
    messaging_profiles,
    optouts,
    phone_numbers,
    short_codes,
)


@dataclass(frozen=True)
class OptoutQuery:
    messaging_profile_id: str | None = None
    number: str | None = None  # the number written to (the API's `from`)
    handset: str | None = None
    created_gte: datetime | None = None
    created_lte: datetime | None = None


_IS_BLOCKED = select(
    exists().where(
        optouts.c.messaging_profile_id == bindparam("profile_id"),
        optouts.c.from_number == bindparam("handset"),
    )
)  # built once: every send asks


_BLOCKED_HANDSETS = (
    select(optouts.c.from_number)
    .where(optouts.c.messaging_profile_id == bindparam("profile_id"))
    .limit(bindparam("limit"))
)

# A profile with at most this many opt-outs has them read once per transaction, as a set: the
# messages of a group commit then cost no query each. Longer lists are asked per handset.
SMALL_LIST = 256


async def is_blocked(uow: UnitOfWork, profile_id: str, handset: str) -> bool:
    small = await uow.memo(("optouts", profile_id), lambda: _small_list(uow, profile_id))
    if small is not None:
        return handset in small
    result = await uow.conn.execute(_IS_BLOCKED, {"profile_id": profile_id, "handset": handset})
    return bool(result.scalar())


async def _small_list(uow: UnitOfWork, profile_id: str) -> frozenset[str] | None:
    """The profile's opted-out handsets, or None when there are more than `SMALL_LIST`."""
    result = await uow.conn.execute(
        _BLOCKED_HANDSETS, {"profile_id": profile_id, "limit": SMALL_LIST + 1}
    )
    handsets = frozenset(result.scalars())
    return handsets if len(handsets) <= SMALL_LIST else None


async def get(uow: UnitOfWork, profile_id: str, handset: str) -> RowMapping | None:
    q = select(optouts).where(
        optouts.c.messaging_profile_id == profile_id, optouts.c.from_number == handset
    )
    return (await uow.conn.execute(q)).mappings().first()


async def insert_if_absent(uow: UnitOfWork, values: dict[str, Any]) -> bool:
    """Insert an opt-out unless the (profile, handset) pair already has one; True if inserted."""
    uow.cache.pop(("optouts", values["messaging_profile_id"]), None)
    dialect = uow.conn.dialect.name
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(optouts).values(**values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        stmt = sqlite.insert(optouts).values(**values).on_conflict_do_nothing()
    else:  # pragma: no cover - only the two supported databases
        if await get(uow, values["messaging_profile_id"], values["from_number"]):
            return False
        stmt = insert(optouts).values(**values)
    result = await uow.conn.execute(stmt)
    return bool(result.rowcount)


async def delete_pair(uow: UnitOfWork, profile_id: str, handset: str) -> int:
    uow.cache.pop(("optouts", profile_id), None)
    result = await uow.conn.execute(
        delete(optouts).where(
            optouts.c.messaging_profile_id == profile_id, optouts.c.from_number == handset
        )
    )
    return int(result.rowcount)


def _where(org_id: str | None, f: OptoutQuery) -> list[ColumnElement[bool]]:
    c = optouts.c
    where: list[ColumnElement[bool]] = []
    if org_id is not None:
        where.append(c.organization_id == org_id)
    if f.messaging_profile_id is not None:
        where.append(c.messaging_profile_id == f.messaging_profile_id)
    if f.number is not None:
        where.append(c.to_number == f.number)
    if f.handset is not None:
        where.append(c.from_number == f.handset)
    if f.created_gte is not None:
        where.append(c.created_at >= f.created_gte)
    if f.created_lte is not None:
        where.append(c.created_at <= f.created_lte)
    return where


async def list_optouts(
    uow: UnitOfWork, org_id: str | None, f: OptoutQuery, offset: int, limit: int
) -> tuple[list[RowMapping], int]:
    """One page of opt-outs (newest first) and the total; `org_id` None means every organization."""
    where = _where(org_id, f)
    total = int(
        (
            await uow.conn.execute(select(func.count()).select_from(optouts).where(*where))
        ).scalar_one()
    )
    if offset >= total:
        return [], total
    q = (
        select(optouts)
        .where(*where)
        .order_by(optouts.c.created_at.desc(), optouts.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return list((await uow.conn.execute(q)).mappings().all()), total


# --- lookups for inbound messages ---------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    """Who receives messages sent to an address on this server."""

    organization_id: str
    messaging_profile_id: str | None
    country_code: str
    line_type: str


async def owner_of(uow: UnitOfWork, address: str) -> Owner | None:
    """The phone number or short code `address` on this server, or None when nobody owns it."""
    q = select(phone_numbers).where(phone_numbers.c.phone_number == address)
    row = (await uow.conn.execute(q)).mappings().first()
    if row is not None:
        return Owner(
            row["organization_id"],
            row["messaging_profile_id"],
            row["country_code"],
            "Wireless" if row["mobile"] else "VoIP",
        )
    sq = select(short_codes).where(short_codes.c.short_code == address).order_by(short_codes.c.id)
    code = (await uow.conn.execute(sq)).mappings().first()
    if code is not None:
        return Owner(
            code["organization_id"], code["messaging_profile_id"], code["country_code"], ""
        )
    return None


async def profile(uow: UnitOfWork, profile_id: str) -> RowMapping | None:
    q = select(messaging_profiles).where(messaging_profiles.c.id == profile_id)
    return (await uow.conn.execute(q)).mappings().first()


async def profile_of_org(uow: UnitOfWork, org_id: str, profile_id: str) -> RowMapping | None:
    q = select(messaging_profiles).where(
        messaging_profiles.c.id == profile_id, messaging_profiles.c.organization_id == org_id
    )
    return (await uow.conn.execute(q)).mappings().first()


async def autoresp_configs_of(uow: UnitOfWork, profile_id: str) -> Sequence[RowMapping]:
    q = (
        select(autoresp_configs)
        .where(autoresp_configs.c.messaging_profile_id == profile_id)
        .order_by(autoresp_configs.c.created_at, autoresp_configs.c.id)
    )
    return list((await uow.conn.execute(q)).mappings().all())
