"""SQL for link domains, short links and their clicks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, func, insert, or_, select
from sqlalchemy.engine import RowMapping

from signalpost.kit.db import UnitOfWork
from signalpost.models import link_clicks, messages, messaging_profiles, short_links, url_domains


def _visible_to(org_id: str) -> ColumnElement[bool]:
    """Domains an organization may use: its own and the server-wide ones (no organization)."""
    return or_(url_domains.c.organization_id.is_(None), url_domains.c.organization_id == org_id)


async def list_domains(
    uow: UnitOfWork, org_id: str, *, offset: int, limit: int
) -> tuple[list[RowMapping], int]:
    where = _visible_to(org_id)
    total = (
        await uow.conn.execute(select(func.count()).select_from(url_domains).where(where))
    ).scalar_one()
    q = (
        select(url_domains)
        .where(where)
        .order_by(url_domains.c.created_at, url_domains.c.id)
        .offset(offset)
        .limit(limit)
    )
    return list((await uow.conn.execute(q)).mappings().all()), int(total)


async def available_domain(uow: UnitOfWork, org_id: str, name: str) -> RowMapping | None:
    """The domain row `name` usable by the organization (its own before a server-wide one)."""
    q = (
        select(url_domains)
        .where(url_domains.c.url_domain == name, _visible_to(org_id))
        .order_by(url_domains.c.organization_id.is_(None), url_domains.c.created_at)
        .limit(1)
    )
    return (await uow.conn.execute(q)).mappings().first()


async def domains_for_admin(uow: UnitOfWork, org_id: str | None) -> list[RowMapping]:
    """Every configured domain, or those visible to one organization."""
    q = select(url_domains).order_by(url_domains.c.created_at, url_domains.c.id)
    if org_id is not None:
        q = q.where(_visible_to(org_id))
    return list((await uow.conn.execute(q)).mappings().all())


async def domain_exists(uow: UnitOfWork, name: str, org_id: str | None) -> bool:
    owner = (
        url_domains.c.organization_id.is_(None)
        if org_id is None
        else url_domains.c.organization_id == org_id
    )
    q = select(url_domains.c.id).where(url_domains.c.url_domain == name, owner).limit(1)
    return (await uow.conn.execute(q)).first() is not None


async def domain_configured(uow: UnitOfWork, name: str) -> bool:
    """Is `name` a link domain of any organization (or of all)?"""
    q = select(url_domains.c.id).where(url_domains.c.url_domain == name).limit(1)
    return (await uow.conn.execute(q)).first() is not None


async def insert_domain(uow: UnitOfWork, row: dict[str, Any]) -> None:
    await uow.conn.execute(insert(url_domains).values(**row))


async def delete_domains(uow: UnitOfWork, id_or_name: str, org_id: str | None) -> int:
    cond = or_(url_domains.c.id == id_or_name, url_domains.c.url_domain == id_or_name)
    if org_id is not None:
        cond = and_(cond, url_domains.c.organization_id == org_id)
    result = await uow.conn.execute(delete(url_domains).where(cond))
    return int(result.rowcount or 0)


async def existing_codes(uow: UnitOfWork, codes: Iterable[str]) -> set[str]:
    wanted = list(codes)
    if not wanted:
        return set()
    q = select(short_links.c.code).where(short_links.c.code.in_(wanted))
    return set((await uow.conn.execute(q)).scalars().all())


async def insert_links(uow: UnitOfWork, rows: list[dict[str, Any]]) -> None:
    if rows:
        await uow.conn.execute(insert(short_links), rows)


async def link(uow: UnitOfWork, code: str) -> RowMapping | None:
    q = select(short_links).where(short_links.c.code == code)
    return (await uow.conn.execute(q)).mappings().first()


async def insert_click(uow: UnitOfWork, row: dict[str, Any]) -> None:
    await uow.conn.execute(insert(link_clicks).values(**row))


async def profile(uow: UnitOfWork, profile_id: str | None) -> RowMapping | None:
    if not profile_id:
        return None
    q = select(messaging_profiles).where(messaging_profiles.c.id == profile_id)
    return (await uow.conn.execute(q)).mappings().first()


async def message_exists(uow: UnitOfWork, org_id: str, message_id: str) -> bool:
    q = select(messages.c.id).where(
        messages.c.id == message_id, messages.c.organization_id == org_id
    )
    return (await uow.conn.execute(q)).first() is not None


_CLICK_COLUMNS = (
    link_clicks,
    short_links.c.organization_id,
    short_links.c.message_id,
    short_links.c.recipient,
    short_links.c.original_url,
    short_links.c.short_url,
)


async def list_clicks(
    uow: UnitOfWork,
    org_id: str,
    *,
    message_id: str | None,
    is_bot: bool | None,
    offset: int,
    limit: int,
) -> tuple[list[RowMapping], int]:
    """Clicks on the organization's short links, newest first."""
    cond = short_links.c.organization_id == org_id
    if message_id is not None:
        cond = and_(cond, short_links.c.message_id == message_id)
    if is_bot is not None:
        cond = and_(cond, link_clicks.c.is_bot.is_(is_bot))
    joined = link_clicks.join(short_links, short_links.c.code == link_clicks.c.code)
    total = (
        await uow.conn.execute(select(func.count()).select_from(joined).where(cond))
    ).scalar_one()
    q = (
        select(*_CLICK_COLUMNS)
        .select_from(joined)
        .where(cond)
        .order_by(link_clicks.c.clicked_at.desc(), link_clicks.c.id)
        .offset(offset)
        .limit(limit)
    )
    return list((await uow.conn.execute(q)).mappings().all()), int(total)


async def links_of_message(uow: UnitOfWork, org_id: str, message_id: str) -> list[RowMapping]:
    """The message's short links with their click counts (all, and by preview bots)."""
    counts = (
        select(
            link_clicks.c.code,
            func.count().label("clicks"),
            func.sum(case((link_clicks.c.is_bot.is_(True), 1), else_=0)).label("bot_clicks"),
            func.max(link_clicks.c.clicked_at).label("last_clicked_at"),
        )
        .group_by(link_clicks.c.code)
        .subquery()
    )
    q = (
        select(
            short_links,
            func.coalesce(counts.c.clicks, 0).label("clicks"),
            func.coalesce(counts.c.bot_clicks, 0).label("bot_clicks"),
            counts.c.last_clicked_at,
        )
        .select_from(short_links.outerjoin(counts, counts.c.code == short_links.c.code))
        .where(short_links.c.organization_id == org_id, short_links.c.message_id == message_id)
        .order_by(short_links.c.created_at, short_links.c.original_url)
    )
    return list((await uow.conn.execute(q)).mappings().all())
