"""SQL for the number inventory: phone numbers, number orders, short codes, alphanumeric sender
IDs, bulk updates, and the message counts behind a number's health."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    case,
    cast,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.engine import RowMapping

from signalpost.kit.db import UnitOfWork
from signalpost.kit.pagination import fetch_page as _page
from signalpost.models import (
    alphanumeric_sender_ids,
    bulk_updates,
    messages,
    messaging_profiles,
    number_orders,
    phone_numbers,
    short_codes,
)
from signalpost.numbers.detailed import DetailedFilter

# Statements stay well under the bound-parameter limits of SQLite and asyncpg.
CHUNK = 500

FINALIZED = ("delivered", "delivery_failed", "delivery_unconfirmed", "sending_failed", "expired")
SPAM_CODES = ("40002", "40003", "40015")

Rows = tuple[list[RowMapping], int]


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


async def profile_exists(uow: UnitOfWork, org_id: str, profile_id: str) -> bool:
    q = select(messaging_profiles.c.id).where(
        messaging_profiles.c.organization_id == org_id, messaging_profiles.c.id == profile_id
    )
    return (await uow.conn.execute(q)).first() is not None


# --- phone numbers ----------------------------------------------------------------------------


async def insert_numbers(uow: UnitOfWork, rows: list[dict[str, Any]]) -> None:
    await uow.conn.execute(insert(phone_numbers), rows)


def _key_match(key: str) -> ColumnElement[bool]:
    """A number addressed by its resource id or its E.164 form (the `+` may be missing)."""
    c = phone_numbers.c
    options = [c.id == key, c.phone_number == key]
    if key.isdigit() and len(key) <= 15:
        options.append(c.phone_number == "+" + key)
    return or_(*options)


async def get_number(uow: UnitOfWork, org_id: str, key: str) -> RowMapping | None:
    q = select(phone_numbers).where(phone_numbers.c.organization_id == org_id, _key_match(key))
    return (await uow.conn.execute(q)).mappings().first()


async def get_number_by_e164(
    uow: UnitOfWork, e164: str, org_id: str | None = None
) -> RowMapping | None:
    q = select(phone_numbers).where(phone_numbers.c.phone_number == e164)
    if org_id is not None:
        q = q.where(phone_numbers.c.organization_id == org_id)
    return (await uow.conn.execute(q)).mappings().first()


async def numbers_by_e164(
    uow: UnitOfWork, e164s: Sequence[str], org_id: str | None = None
) -> dict[str, RowMapping]:
    """The stored rows of the given numbers (any organization unless `org_id`), by number."""
    out: dict[str, RowMapping] = {}
    for chunk in _chunks(e164s):
        q = select(phone_numbers).where(phone_numbers.c.phone_number.in_(chunk))
        if org_id is not None:
            q = q.where(phone_numbers.c.organization_id == org_id)
        for row in (await uow.conn.execute(q)).mappings():
            out[row["phone_number"]] = row
    return out


NumberType = Literal["long-code", "toll-free", "short-code"]


@dataclass(frozen=True)
class NumberFilter:
    messaging_profile_id: str | None = None
    unassigned: bool = False  # `filter[messaging_profile_id]=null`
    phone_numbers: tuple[str, ...] = ()
    contains: str | None = None
    type: NumberType | None = None
    mobile_only: bool = False


async def list_numbers(
    uow: UnitOfWork,
    org_id: str,
    f: NumberFilter,
    sort: Literal["asc", "desc"] | None,
    offset: int,
    limit: int,
) -> Rows:
    c = phone_numbers.c
    where: list[ColumnElement[bool]] = [c.organization_id == org_id]
    if f.unassigned:
        where.append(c.messaging_profile_id.is_(None))
    elif f.messaging_profile_id is not None:
        where.append(c.messaging_profile_id == f.messaging_profile_id)
    if f.phone_numbers:
        where.append(c.phone_number.in_(f.phone_numbers))
    if f.contains:
        where.append(c.phone_number.contains(f.contains, autoescape=True))
    if f.type == "short-code":
        where.append(false())  # short codes live in their own inventory (`/short_codes`)
    elif f.type is not None:
        where.append(c.type == f.type)
    if f.mobile_only:
        where.append(c.mobile.is_(True))
    if sort == "desc":
        order: list[Any] = [c.phone_number.desc()]
    elif sort == "asc":
        order = [c.phone_number.asc()]
    else:
        order = [c.created_at, c.phone_number]
    return await _page(uow, phone_numbers, where, order, offset, limit)


async def update_number(uow: UnitOfWork, number_id: str, values: dict[str, Any]) -> None:
    await uow.conn.execute(
        update(phone_numbers).where(phone_numbers.c.id == number_id).values(**values)
    )


async def update_numbers(
    uow: UnitOfWork, number_ids: Sequence[str], values: dict[str, Any]
) -> None:
    for chunk in _chunks(number_ids):
        await uow.conn.execute(
            update(phone_numbers).where(phone_numbers.c.id.in_(chunk)).values(**values)
        )


async def profile_numbers(uow: UnitOfWork, profile_id: str) -> list[RowMapping]:
    q = (
        select(phone_numbers)
        .where(phone_numbers.c.messaging_profile_id == profile_id)
        .order_by(phone_numbers.c.phone_number)
    )
    return list((await uow.conn.execute(q)).mappings().all())


async def list_all_numbers(uow: UnitOfWork, org_id: str) -> list[RowMapping]:
    q = (
        select(phone_numbers)
        .where(phone_numbers.c.organization_id == org_id)
        .order_by(phone_numbers.c.phone_number)
    )
    return list((await uow.conn.execute(q)).mappings().all())


# --- health -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrafficCounts:
    outbound: int = 0
    finalized: int = 0
    delivered: int = 0
    spam: int = 0
    inbound: int = 0


async def traffic_counts(
    uow: UnitOfWork, organization_id: str, e164s: Sequence[str]
) -> dict[str, TrafficCounts]:
    """Per number: the organization's messages sent from it (all, finalized, delivered,
    spam-blocked) and received (another organization's messages with the number never count)."""
    m = messages.c
    errors_text = cast(m.errors, String)
    spam = or_(*(errors_text.contains(f'"{code}"') for code in SPAM_CODES))

    def total(cond: ColumnElement[bool]) -> Any:
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    out: dict[str, TrafficCounts] = {}
    for chunk in _chunks(e164s):
        sent_q = (
            select(
                m.from_number,
                func.count(),
                total(m.to_status.in_(FINALIZED)),
                total(m.to_status == "delivered"),
                total(spam),
            )
            .where(
                m.direction == "outbound",
                m.from_number.in_(chunk),
                m.organization_id == organization_id,
            )
            .group_by(m.from_number)
        )
        for number, sent, finalized, delivered, spammed in await uow.conn.execute(sent_q):
            out[number] = TrafficCounts(int(sent), int(finalized), int(delivered), int(spammed))
        recv_q = (
            select(m.to_number, func.count())
            .where(
                m.direction == "inbound",
                m.to_number.in_(chunk),
                m.organization_id == organization_id,
            )
            .group_by(m.to_number)
        )
        for number, received in await uow.conn.execute(recv_q):
            prev = out.get(number, TrafficCounts())
            out[number] = TrafficCounts(
                prev.outbound, prev.finalized, prev.delivered, prev.spam, int(received)
            )
    return out


# --- number orders ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderFilter:
    status: str | None = None
    customer_reference: str | None = None
    phone_numbers_count: int | None = None
    requirements_met: bool | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


async def insert_order(uow: UnitOfWork, values: dict[str, Any]) -> None:
    await uow.conn.execute(insert(number_orders).values(**values))


async def get_order(uow: UnitOfWork, org_id: str, order_id: str) -> RowMapping | None:
    q = select(number_orders).where(
        number_orders.c.organization_id == org_id, number_orders.c.id == order_id
    )
    return (await uow.conn.execute(q)).mappings().first()


async def list_orders(
    uow: UnitOfWork, org_id: str, f: OrderFilter, offset: int, limit: int
) -> Rows:
    c = number_orders.c
    where: list[ColumnElement[bool]] = [c.organization_id == org_id]
    if f.status is not None:
        where.append(c.status == f.status)
    if f.customer_reference is not None:
        where.append(c.customer_reference == f.customer_reference)
    if f.requirements_met is False:
        where.append(false())  # every sandbox order meets its requirements
    if f.created_after is not None:
        where.append(c.created_at > f.created_after)
    if f.created_before is not None:
        where.append(c.created_at < f.created_before)
    if f.phone_numbers_count is not None:
        # The count lives inside a JSON column and JSON length functions differ per backend;
        # an organization has few orders, so match the count here.
        q = select(c.id, c.phone_numbers).where(*where)
        ids = [
            r.id
            for r in await uow.conn.execute(q)
            if len(r.phone_numbers or []) == f.phone_numbers_count
        ]
        where.append(c.id.in_(ids) if ids else false())
    return await _page(uow, number_orders, where, [c.created_at.desc(), c.id], offset, limit)


async def update_order(uow: UnitOfWork, order_id: str, values: dict[str, Any]) -> None:
    await uow.conn.execute(
        update(number_orders).where(number_orders.c.id == order_id).values(**values)
    )


# --- short codes ------------------------------------------------------------------------------


async def insert_short_code(uow: UnitOfWork, values: dict[str, Any]) -> None:
    await uow.conn.execute(insert(short_codes).values(**values))


async def get_short_code(uow: UnitOfWork, org_id: str, short_code_id: str) -> RowMapping | None:
    q = select(short_codes).where(
        short_codes.c.organization_id == org_id, short_codes.c.id == short_code_id
    )
    return (await uow.conn.execute(q)).mappings().first()


async def find_short_codes(
    uow: UnitOfWork, code: str, org_id: str | None = None, country_code: str | None = None
) -> list[RowMapping]:
    c = short_codes.c
    q = select(short_codes).where(c.short_code == code)
    if org_id is not None:
        q = q.where(c.organization_id == org_id)
    if country_code is not None:
        q = q.where(c.country_code == country_code)
    return list((await uow.conn.execute(q.order_by(c.country_code))).mappings().all())


async def list_short_codes(
    uow: UnitOfWork,
    org_id: str,
    profile_id: str | None,
    unassigned: bool,
    offset: int,
    limit: int,
) -> Rows:
    c = short_codes.c
    where: list[ColumnElement[bool]] = [c.organization_id == org_id]
    if unassigned:
        where.append(c.messaging_profile_id.is_(None))
    elif profile_id is not None:
        where.append(c.messaging_profile_id == profile_id)
    return await _page(uow, short_codes, where, [c.created_at, c.short_code, c.id], offset, limit)


async def update_short_code(uow: UnitOfWork, short_code_id: str, values: dict[str, Any]) -> None:
    await uow.conn.execute(
        update(short_codes).where(short_codes.c.id == short_code_id).values(**values)
    )


# --- alphanumeric sender IDs ------------------------------------------------------------------


async def insert_alphanumeric(uow: UnitOfWork, values: dict[str, Any]) -> None:
    await uow.conn.execute(insert(alphanumeric_sender_ids).values(**values))


async def get_alphanumeric(uow: UnitOfWork, org_id: str, sender_id: str) -> RowMapping | None:
    c = alphanumeric_sender_ids.c
    q = select(alphanumeric_sender_ids).where(c.organization_id == org_id, c.id == sender_id)
    return (await uow.conn.execute(q)).mappings().first()


async def find_alphanumeric(uow: UnitOfWork, profile_id: str, sender: str) -> RowMapping | None:
    c = alphanumeric_sender_ids.c
    q = select(alphanumeric_sender_ids).where(
        c.messaging_profile_id == profile_id, c.alphanumeric_sender_id == sender
    )
    return (await uow.conn.execute(q)).mappings().first()


async def list_alphanumeric(
    uow: UnitOfWork, org_id: str, profile_id: str | None, offset: int, limit: int
) -> Rows:
    c = alphanumeric_sender_ids.c
    where: list[ColumnElement[bool]] = [c.organization_id == org_id]
    if profile_id is not None:
        where.append(c.messaging_profile_id == profile_id)
    return await _page(uow, alphanumeric_sender_ids, where, [c.created_at, c.id], offset, limit)


async def delete_alphanumeric(uow: UnitOfWork, sender_id: str) -> None:
    await uow.conn.execute(
        delete(alphanumeric_sender_ids).where(alphanumeric_sender_ids.c.id == sender_id)
    )


# --- bulk updates -----------------------------------------------------------------------------


async def insert_bulk_update(uow: UnitOfWork, values: dict[str, Any]) -> None:
    await uow.conn.execute(insert(bulk_updates).values(**values))


async def get_bulk_update(
    uow: UnitOfWork, order_id: str, org_id: str | None = None
) -> RowMapping | None:
    q = select(bulk_updates).where(bulk_updates.c.order_id == order_id)
    if org_id is not None:
        q = q.where(bulk_updates.c.organization_id == org_id)
    return (await uow.conn.execute(q)).mappings().first()


async def update_bulk_update(uow: UnitOfWork, order_id: str, values: dict[str, Any]) -> None:
    await uow.conn.execute(
        update(bulk_updates).where(bulk_updates.c.order_id == order_id).values(**values)
    )


def _with_profile_name() -> Select[Any]:
    return select(
        phone_numbers, messaging_profiles.c.name.label("messaging_profile_name")
    ).select_from(
        phone_numbers.outerjoin(
            messaging_profiles, messaging_profiles.c.id == phone_numbers.c.messaging_profile_id
        )
    )


async def number_with_profile_name(uow: UnitOfWork, org_id: str, number_id: str) -> RowMapping:
    """One of the organization's phone numbers with its profile's name."""
    q = _with_profile_name().where(
        phone_numbers.c.organization_id == org_id, phone_numbers.c.id == number_id
    )
    return (await uow.conn.execute(q)).mappings().one()


def _detailed_where(f: DetailedFilter, sqlite: bool) -> list[ColumnElement[bool]]:
    """`GET /phone_numbers`'s filters as SQL (numbers.detailed: what each one means here)."""
    c = phone_numbers.c
    impossible = (
        f.impossible
        or f.customer_reference is not None  # numbers carry none here
        or f.status not in (None, "active")  # every number here is active
        or f.source not in (None, "purchased")  # and was ordered
        or (f.digits is not None and not f.digits.isdigit())
        or f.number_type in ("national", "shared_cost")
    )
    if impossible:
        return [false()]
    where: list[ColumnElement[bool]] = []
    if f.tag is not None:
        # The tags are a JSON array: its elements as a table (SQLite's json_each, PostgreSQL's
        # json_array_elements_text), correlated to each number.
        elements = (func.json_each if sqlite else func.json_array_elements_text)(c.tags)
        values = elements.table_valued("value").alias("tag_values")
        where.append(exists(select(literal(1)).select_from(values).where(values.c.value == f.tag)))
    if f.without_tags:
        where.append(func.json_array_length(c.tags) == 0)
    if f.digits is not None:
        where.append(c.phone_number.contains(f.digits, autoescape=True))
    if f.countries:
        where.append(c.country_code.in_(f.countries))
    if f.number_type == "toll_free":
        where.append(c.type == "toll-free")
    elif f.number_type in ("mobile", "local"):
        where += [c.type != "toll-free", c.mobile.is_(f.number_type == "mobile")]
    return where


async def list_numbers_detailed(
    uow: UnitOfWork, org_id: str, f: DetailedFilter, offset: int, limit: int
) -> Rows:
    """One page of the organization's numbers matching `f`, with their profile's name, in the
    order asked for (default: newest first), and the count of all that match."""
    c = phone_numbers.c
    where = [c.organization_id == org_id, *_detailed_where(f, uow.db.is_sqlite)]
    if f.sort == "phone_number":
        order = [c.phone_number.desc() if f.descending else c.phone_number.asc()]
    elif f.sort == "purchased_at" and not f.descending:
        order = [c.created_at.asc(), c.phone_number.asc()]
    else:  # newest first (connection_name and usage_payment_method: the same for every number)
        order = [c.created_at.desc(), c.phone_number.desc()]
    return await _page(uow, phone_numbers, where, order, offset, limit, rows=_with_profile_name())
