"""SQL for organizations and API keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.engine import RowMapping

from signalpost.kit.db import UnitOfWork
from signalpost.models import api_keys, organizations


async def count_organizations(uow: UnitOfWork) -> int:
    return int(
        (await uow.conn.execute(select(func.count()).select_from(organizations))).scalar_one()
    )


async def insert_organization(uow: UnitOfWork, row: dict[str, object]) -> None:
    await uow.conn.execute(insert(organizations).values(**row))


async def find_organization(uow: UnitOfWork, name_or_id: str) -> RowMapping | None:
    q = select(organizations).where(
        or_(organizations.c.id == name_or_id, organizations.c.name == name_or_id)
    )
    return (await uow.conn.execute(q)).mappings().first()


async def default_organization(uow: UnitOfWork) -> RowMapping | None:
    q = select(organizations).order_by(organizations.c.created_at, organizations.c.id).limit(1)
    return (await uow.conn.execute(q)).mappings().first()


async def list_organizations(uow: UnitOfWork) -> list[RowMapping]:
    q = select(organizations).order_by(organizations.c.created_at)
    return list((await uow.conn.execute(q)).mappings().all())


async def insert_api_key(uow: UnitOfWork, row: dict[str, object]) -> None:
    await uow.conn.execute(insert(api_keys).values(**row))


async def organization_for_key(uow: UnitOfWork, key_hash: str) -> RowMapping | None:
    q = (
        select(organizations)
        .join(api_keys, api_keys.c.organization_id == organizations.c.id)
        .where(api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None))
    )
    return (await uow.conn.execute(q)).mappings().first()


async def key_exists(uow: UnitOfWork, key_hash: str) -> bool:
    q = select(api_keys.c.id).where(api_keys.c.key_hash == key_hash)
    return (await uow.conn.execute(q)).first() is not None


async def list_api_keys(uow: UnitOfWork, organization_id: str | None) -> list[RowMapping]:
    q = select(api_keys, organizations.c.name.label("organization_name")).join(
        organizations, organizations.c.id == api_keys.c.organization_id
    )
    if organization_id:
        q = q.where(api_keys.c.organization_id == organization_id)
    return list((await uow.conn.execute(q.order_by(api_keys.c.created_at))).mappings().all())


async def revoke_api_key(uow: UnitOfWork, id_or_prefix: str, at: datetime) -> int:
    q = (
        update(api_keys)
        .where(
            or_(api_keys.c.id == id_or_prefix, api_keys.c.prefix == id_or_prefix),
            api_keys.c.revoked_at.is_(None),
        )
        .values(revoked_at=at)
    )
    return (await uow.conn.execute(q)).rowcount


async def set_signing_key(uow: UnitOfWork, org_id: str, public_key: str, seed: str) -> None:
    await uow.conn.execute(
        update(organizations)
        .where(organizations.c.id == org_id)
        .values(public_key=public_key, signing_seed=seed)
    )
