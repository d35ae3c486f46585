"""Ordering numbers: in the sandbox an order completes at once (see `numbers.service` for the rules)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from signalpost.kit import phone
from signalpost.kit.clock import utcnow
from signalpost.kit.db import UnitOfWork
from signalpost.kit.errors import invalid, not_found
from signalpost.kit.ids import new_uuid, numeric_id
from signalpost.kit.pagination import Page
from signalpost.numbers import repository as repo
from signalpost.numbers.repository import OrderFilter, Rows
from signalpost.numbers.schemas import (
    DEFAULT_PRODUCT,
    NumberOrderCreate,
    NumberOrderUpdate,
)
from signalpost.numbers.service import not_e164, require_profile_of, unavailable


def _order_type(info: phone.NumberInfo, mobile: bool) -> str:
    if info.toll_free:
        return "toll_free"
    return "mobile" if mobile else "local"


async def create_order(
    uow: UnitOfWork, organization_id: str, body: NumberOrderCreate, *, mobile: bool = False
) -> RowMapping:
    """Order numbers: in the sandbox they join the inventory at once (status `success`).

    `mobile` marks every number as mobile (besides those `phonenumbers` knows to be mobile).
    """
    profile_id = body.messaging_profile_id or None
    if profile_id is not None:
        await require_profile_of(uow, organization_id, profile_id, "/messaging_profile_id")
    parsed = _parse_order_numbers(body, mobile)
    await _check_available(uow, organization_id, parsed)
    now = utcnow()
    order_id = new_uuid()
    rows: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    for (info, _), item in zip(parsed, body.phone_numbers, strict=True):
        row = _number_row(organization_id, info, mobile or info.mobile, profile_id, now)
        rows.append(row)
        items.append(
            {
                "id": row["id"],
                "phone_number": info.e164,
                "phone_number_type": _order_type(info, row["mobile"]),
                "country_code": info.country_code,
                "bundle_id": item.bundle_id,
                "requirement_group_id": item.requirement_group_id,
                "status": "success",
            }
        )
    try:
        await repo.insert_numbers(uow, rows)
    except IntegrityError:
        # Another order took one of these numbers between the check and the insert.
        raise unavailable(
            "/phone_numbers", "One of the numbers was ordered by someone else just now."
        ) from None
    await repo.insert_order(
        uow,
        {
            "id": order_id,
            "organization_id": organization_id,
            "status": "success",
            "messaging_profile_id": profile_id,
            "connection_id": body.connection_id,
            "billing_group_id": body.billing_group_id,
            "customer_reference": body.customer_reference,
            "phone_numbers": items,
            "created_at": now,
            "updated_at": now,
        },
    )
    return await require_order(uow, organization_id, order_id)


def _parse_order_numbers(
    body: NumberOrderCreate, mobile: bool
) -> list[tuple[phone.NumberInfo, str]]:
    """The ordered numbers, each with its pointer: +E.164, once each, mobile ones not toll-free."""
    parsed: list[tuple[phone.NumberInfo, str]] = []
    seen: set[str] = set()
    for i, item in enumerate(body.phone_numbers):
        pointer = f"/phone_numbers/{i}/phone_number"
        info = phone.parse(item.phone_number)
        if info is None:
            raise not_e164(pointer, item.phone_number)
        if info.e164 in seen:
            raise invalid(
                pointer,
                f"{info.e164} appears more than once in the order.",
                code="10012",
                title="Duplicate phone number",
            )
        if mobile and info.toll_free:
            raise invalid(pointer, f"{info.e164} is toll-free and cannot be a mobile number.")
        seen.add(info.e164)
        parsed.append((info, pointer))
    return parsed


async def _check_available(
    uow: UnitOfWork, organization_id: str, parsed: Sequence[tuple[phone.NumberInfo, str]]
) -> None:
    """No ordered number may be owned already, by anyone (10012)."""
    taken = await repo.numbers_by_e164(uow, [info.e164 for info, _ in parsed])
    for info, pointer in parsed:
        owner = taken.get(info.e164)
        if owner is not None:
            where = (
                "is already in your inventory"
                if owner["organization_id"] == organization_id
                else "is not available: another organization on this server owns it"
            )
            raise unavailable(pointer, f"{info.e164} {where}.")


def _number_row(
    organization_id: str,
    info: phone.NumberInfo,
    mobile: bool,
    profile_id: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The `phone_numbers` row of an ordered number."""
    return {
        "id": numeric_id(),
        "organization_id": organization_id,
        "phone_number": info.e164,
        "country_code": info.country_code,
        "type": "toll-free" if info.toll_free else "long-code",
        "mobile": mobile,
        "messaging_profile_id": profile_id,
        "messaging_product": DEFAULT_PRODUCT,
        "traffic_type": DEFAULT_PRODUCT,
        "tags": [],
        "whatsapp_enabled": False,
        "rate_limit": None,
        "created_at": now,
        "updated_at": now,
    }


async def require_order(uow: UnitOfWork, organization_id: str, order_id: str) -> RowMapping:
    row = await repo.get_order(uow, organization_id, order_id)
    if row is None:
        raise not_found("Number order", f"Number order '{order_id}' not found.")
    return row


async def list_orders(uow: UnitOfWork, organization_id: str, f: OrderFilter, page: Page) -> Rows:
    return await repo.list_orders(uow, organization_id, f, page.offset, page.size)


async def update_order(
    uow: UnitOfWork, organization_id: str, order_id: str, body: NumberOrderUpdate
) -> RowMapping:
    await require_order(uow, organization_id, order_id)
    if body.customer_reference is not None:
        await repo.update_order(
            uow, order_id, {"customer_reference": body.customer_reference, "updated_at": utcnow()}
        )
    return await require_order(uow, organization_id, order_id)
