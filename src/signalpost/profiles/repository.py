"""SQL for messaging profiles, their auto-response configs, and the senders listed under a profile."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.engine import RowMapping

from signalpost.kit.db import UnitOfWork
from signalpost.kit.pagination import fetch_page as _page
from signalpost.models import (
    alphanumeric_sender_ids,
    autoresp_configs,
    messaging_profiles,
    phone_numbers,
    short_codes,
)

# --- profiles ---------------------------------------------------------------------------------


async def insert_profile(uow: UnitOfWork, values: dict[str, Any]) -> None:
    await uow.conn.execute(insert(messaging_profiles).values(**values))


async def get_profile(uow: UnitOfWork, org_id: str, profile_id: str) -> RowMapping | None:
    q = select(messaging_profiles).where(
        messaging_profiles.c.organization_id == org_id, messaging_profiles.c.id == profile_id
    )
    return (await uow.conn.execute(q)).mappings().first()


@dataclass(frozen=True)
class NameFilter:
    equals: str | None = None
    contains: str | None = None


async def list_profiles(
    uow: UnitOfWork, org_id: str, name: NameFilter, offset: int, limit: int
) -> tuple[list[RowMapping], int]:
    c = messaging_profiles.c
    where: list[ColumnElement[bool]] = [c.organization_id == org_id]
    if name.equals is not None:
        where.append(c.name == name.equals)
    if name.contains is not None:
        where.append(func.lower(c.name).contains(name.contains.lower(), autoescape=True))
    return await _page(uow, messaging_profiles, where, [c.created_at, c.id], offset, limit)


async def update_profile(uow: UnitOfWork, profile_id: str, values: dict[str, Any]) -> None:
    await uow.conn.execute(
        update(messaging_profiles).where(messaging_profiles.c.id == profile_id).values(**values)
    )


async def delete_profile(uow: UnitOfWork, profile_id: str) -> None:
    """Numbers and short codes on it are detached (FK SET NULL); its own rows go with it (CASCADE)."""
    await uow.conn.execute(delete(messaging_profiles).where(messaging_profiles.c.id == profile_id))


# --- senders on a profile ---------------------------------------------------------------------


async def list_phone_numbers(
    uow: UnitOfWork, org_id: str, profile_id: str, offset: int, limit: int
) -> tuple[list[RowMapping], int]:
    c = phone_numbers.c
    where = [c.organization_id == org_id, c.messaging_profile_id == profile_id]
    return await _page(uow, phone_numbers, where, [c.phone_number], offset, limit)


async def list_short_codes(
    uow: UnitOfWork, org_id: str, profile_id: str, offset: int, limit: int
) -> tuple[list[RowMapping], int]:
    c = short_codes.c
    where = [c.organization_id == org_id, c.messaging_profile_id == profile_id]
    return await _page(uow, short_codes, where, [c.short_code, c.id], offset, limit)


async def list_alphanumeric_sender_ids(
    uow: UnitOfWork, org_id: str, profile_id: str, offset: int, limit: int
) -> tuple[list[RowMapping], int]:
    c = alphanumeric_sender_ids.c
    where = [c.organization_id == org_id, c.messaging_profile_id == profile_id]
    return await _page(
        uow, alphanumeric_sender_ids, where, [c.alphanumeric_sender_id, c.id], offset, limit
    )


# --- auto-response configs --------------------------------------------------------------------


@dataclass(frozen=True)
class AutorespFilter:
    country_code: str | None = None
    created_gte: datetime | None = None
    created_lte: datetime | None = None
    updated_gte: datetime | None = None
    updated_lte: datetime | None = None


async def insert_autoresp(uow: UnitOfWork, values: dict[str, Any]) -> None:
    await uow.conn.execute(insert(autoresp_configs).values(**values))


async def get_autoresp(uow: UnitOfWork, profile_id: str, config_id: str) -> RowMapping | None:
    q = select(autoresp_configs).where(
        autoresp_configs.c.messaging_profile_id == profile_id, autoresp_configs.c.id == config_id
    )
    return (await uow.conn.execute(q)).mappings().first()


async def list_autoresp(
    uow: UnitOfWork, profile_id: str, f: AutorespFilter, offset: int, limit: int
) -> tuple[list[RowMapping], int]:
    c = autoresp_configs.c
    where: list[ColumnElement[bool]] = [c.messaging_profile_id == profile_id]
    if f.country_code is not None:
        where.append(c.country_code == f.country_code)
    if f.created_gte is not None:
        where.append(c.created_at >= f.created_gte)
    if f.created_lte is not None:
        where.append(c.created_at <= f.created_lte)
    if f.updated_gte is not None:
        where.append(c.updated_at >= f.updated_gte)
    if f.updated_lte is not None:
        where.append(c.updated_at <= f.updated_lte)
    return await _page(uow, autoresp_configs, where, [c.created_at, c.id], offset, limit)


async def update_autoresp(uow: UnitOfWork, config_id: str, values: dict[str, Any]) -> None:
    await uow.conn.execute(
        update(autoresp_configs).where(autoresp_configs.c.id == config_id).values(**values)
    )


async def delete_autoresp(uow: UnitOfWork, config_id: str) -> None:
    await uow.conn.execute(delete(autoresp_configs).where(autoresp_configs.c.id == config_id))


# --- metrics ----------------------------------------------------------------------------------


async def message_stats_rows(
    uow: UnitOfWork, org_id: str, profile_ids: list[str], since: datetime
) -> list[RowMapping]:
    """The fields metrics are computed from, for the profiles' messages received since `since`."""
    from signalpost.models import messages

    c = messages.c
    q = select(
        c.messaging_profile_id, c.direction, c.type, c.to_status, c.cost, c.received_at
    ).where(
        c.organization_id == org_id,
        c.messaging_profile_id.in_(profile_ids),
        c.received_at >= since,
    )
    return list((await uow.conn.execute(q)).mappings().all())


async def number_counts(uow: UnitOfWork, profile_ids: list[str]) -> dict[str, int]:
    c = phone_numbers.c
    q = (
        select(c.messaging_profile_id, func.count())
        .where(c.messaging_profile_id.in_(profile_ids))
        .group_by(c.messaging_profile_id)
    )
    return {str(pid): int(n) for pid, n in (await uow.conn.execute(q)).all()}
