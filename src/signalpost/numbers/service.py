"""Number inventory use cases: ordering numbers, their messaging settings, short codes,
alphanumeric sender IDs and bulk profile assignment. Services never commit.

Decisions worth knowing:
- A number belongs to at most one organization on the whole server (it is "on-net" there). An
  order naming a number that is already owned — by anyone, the caller included — is rejected as a
  whole with 422 / code 10012 and a pointer to the number; nothing of the order is stored. So a
  sandbox order that is accepted has completed: status `success` for it and each of its numbers.
- `assign_only` on a bulk update: when true only `messaging_profile_id` changes; when false (the
  default) each number is also configured afresh for messaging: `messaging_product` and
  `traffic_type` go back to the default product (P2P). Tags, WhatsApp and rate-limit overrides are
  never touched by a bulk update.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import RowMapping

from signalpost.kit import phone
from signalpost.kit.clock import utcnow
from signalpost.kit.db import UnitOfWork
from signalpost.kit.errors import ApiError, invalid, not_found
from signalpost.kit.ids import new_uuid
from signalpost.kit.pagination import Page
from signalpost.kit.queue import enqueue
from signalpost.numbers import repository as repo
from signalpost.numbers.detailed import DetailedFilter
from signalpost.numbers.repository import NumberFilter, Rows, TrafficCounts
from signalpost.numbers.schemas import (
    DEFAULT_PRODUCT,
    ELIGIBLE_PRODUCTS,
    AlphanumericSenderIdCreate,
    BulkUpdateCreate,
    MessagingSettingsUpdate,
    ShortCodeUpdate,
)

BULK_UPDATE_JOB = "numbers.bulk_update"
COUNTRY_RE = re.compile(r"^[A-Z]{2}\Z")


def unavailable(pointer: str, detail: str) -> ApiError:
    return ApiError(
        422, "10012", "Phone number not available", detail, pointer=pointer, should_retry=False
    )


def not_e164(pointer: str, value: str) -> ApiError:
    return invalid(
        pointer,
        f"'{value}' is not a valid phone number in +E.164 format (e.g. +13125550100).",
        code="10016",
        title="Phone number must be +E.164",
    )


async def require_profile_of(
    uow: UnitOfWork, organization_id: str, profile_id: str, pointer: str
) -> None:
    """A messaging profile named in a request body must be one of the organization's."""
    if not await repo.profile_exists(uow, organization_id, profile_id):
        raise invalid(
            pointer,
            f"Messaging profile '{profile_id}' does not exist.",
            code="10017",
            title="Associated resource does not exist",
        )


def number_key(raw: str) -> str:
    """A path id: the resource id or the E.164 number (a `+` decoded as a space is restored)."""
    key = raw.strip()
    if raw.startswith(" ") and key.isdigit():
        return "+" + key
    return key


# --- lookups for other features ---------------------------------------------------------------


async def find_owned_number(uow: UnitOfWork, organization_id: str, e164: str) -> RowMapping | None:
    """The organization's `phone_numbers` row for `e164`, if it owns that number."""
    return await repo.get_number_by_e164(uow, e164, organization_id)


async def find_any_number(uow: UnitOfWork, e164: str) -> RowMapping | None:
    """The `phone_numbers` row for `e164` whoever owns it (on-net routing), or None (off-net)."""
    return await repo.get_number_by_e164(uow, e164)


async def profile_numbers(uow: UnitOfWork, profile_id: str) -> list[RowMapping]:
    """The numbers assigned to a messaging profile, by phone number."""
    return await repo.profile_numbers(uow, profile_id)


async def find_owned_short_code(
    uow: UnitOfWork, organization_id: str, code: str, country_code: str | None = None
) -> RowMapping | None:
    """The organization's short code `code` (the first by country unless `country_code`)."""
    rows = await repo.find_short_codes(uow, code, organization_id, country_code)
    return rows[0] if rows else None


async def find_alphanumeric_sender_id(
    uow: UnitOfWork, profile_id: str, sender: str
) -> RowMapping | None:
    """The alphanumeric sender ID `sender` registered on the profile, if any."""
    return await repo.find_alphanumeric(uow, profile_id, sender)


# --- health -----------------------------------------------------------------------------------


def _health(c: TrafficCounts) -> dict[str, Any]:
    return {
        "inbound_outbound_ratio": round(c.inbound / max(c.outbound, 1), 4),
        "message_count": c.outbound,
        "spam_ratio": round(c.spam / c.outbound, 4) if c.outbound else 0.0,
        "success_ratio": round(c.delivered / c.finalized, 4) if c.finalized else 1.0,
    }


async def numbers_health(
    uow: UnitOfWork, organization_id: str, e164s: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """`number_health` for many numbers in two queries, keyed by number."""
    counts = await repo.traffic_counts(uow, organization_id, list(e164s))
    return {n: _health(counts.get(n, TrafficCounts())) for n in e164s}


async def number_health(uow: UnitOfWork, organization_id: str, phone_number: str) -> dict[str, Any]:
    """The `health` object of a number, from the messages it sent and received.

    `message_count`: outbound messages from it; `success_ratio`: delivered / finalized (1.0 before
    any is finalized); `spam_ratio`: spam-blocked (40002, 40003, 40015) / sent;
    `inbound_outbound_ratio`: received / sent (received when nothing was sent).
    """
    return (await numbers_health(uow, organization_id, [phone_number]))[phone_number]


# --- phone numbers and their messaging settings -----------------------------------------------


async def require_number(uow: UnitOfWork, organization_id: str, raw_id: str) -> RowMapping:
    row = await repo.get_number(uow, organization_id, number_key(raw_id))
    if row is None:
        raise not_found("Phone number", f"Phone number '{raw_id}' not found.")
    return row


async def require_mobile_number(uow: UnitOfWork, organization_id: str, raw_id: str) -> RowMapping:
    row = await repo.get_number(uow, organization_id, number_key(raw_id))
    if row is None or not row["mobile"]:
        raise not_found("Mobile phone number", f"Mobile phone number '{raw_id}' not found.")
    return row


async def list_numbers(
    uow: UnitOfWork, organization_id: str, f: NumberFilter, sort: Any, page: Page
) -> Rows:
    return await repo.list_numbers(uow, organization_id, f, sort, page.offset, page.size)


async def list_numbers_detailed(
    uow: UnitOfWork, organization_id: str, f: DetailedFilter, page: Page
) -> Rows:
    return await repo.list_numbers_detailed(uow, organization_id, f, page.offset, page.size)


async def number_with_profile_name(
    uow: UnitOfWork, organization_id: str, number_id: str
) -> RowMapping:
    return await repo.number_with_profile_name(uow, organization_id, number_id)


async def list_all_numbers(uow: UnitOfWork, organization_id: str) -> list[RowMapping]:
    return await repo.list_all_numbers(uow, organization_id)


async def update_messaging(
    uow: UnitOfWork, organization_id: str, raw_id: str, body: MessagingSettingsUpdate
) -> RowMapping:
    """Change what was sent: profile (`""` unassigns), messaging product, tags (replaced)."""
    row = await require_number(uow, organization_id, raw_id)
    values: dict[str, Any] = {}
    if body.messaging_profile_id is not None:
        if body.messaging_profile_id == "":
            values["messaging_profile_id"] = None
        else:
            await require_profile_of(
                uow, organization_id, body.messaging_profile_id, "/messaging_profile_id"
            )
            values["messaging_profile_id"] = body.messaging_profile_id
    if body.messaging_product is not None:
        product = body.messaging_product.strip().upper()
        if product not in ELIGIBLE_PRODUCTS:
            raise invalid(
                "/messaging_product",
                f"'{body.messaging_product}' is not a messaging product this number can use "
                f"({', '.join(ELIGIBLE_PRODUCTS)}).",
            )
        values["messaging_product"] = product
        values["traffic_type"] = product
    if body.tags is not None:
        values["tags"] = list(body.tags)
    if values:
        values["updated_at"] = utcnow()
        await repo.update_number(uow, row["id"], values)
    return await require_number(uow, organization_id, row["id"])


async def set_whatsapp(
    uow: UnitOfWork, organization_id: str, e164: str, enabled: bool
) -> RowMapping:
    row = await require_number(uow, organization_id, e164)
    await repo.update_number(uow, row["id"], {"whatsapp_enabled": enabled, "updated_at": utcnow()})
    return await require_number(uow, organization_id, row["id"])


async def set_rate_limit(
    uow: UnitOfWork, organization_id: str, sender: str, rate: float | None
) -> str:
    """Set (or clear, `None`) the messages-per-second override of a number or short code.

    Returns what was changed, e.g. `+13125550100` or `short code 12345 (US)`.
    """
    if rate is not None and not rate > 0:
        raise invalid("/rate_limit", "The rate must be a positive number of messages per second.")
    if phone.SHORT_CODE.match(sender):
        codes = await repo.find_short_codes(uow, sender, organization_id)
        if not codes:
            raise not_found("Short code", f"Short code '{sender}' not found.")
        for code in codes:
            await repo.update_short_code(
                uow, code["id"], {"rate_limit": rate, "updated_at": utcnow()}
            )
        return ", ".join(f"short code {c['short_code']} ({c['country_code']})" for c in codes)
    row = await require_number(uow, organization_id, sender)
    await repo.update_number(uow, row["id"], {"rate_limit": rate, "updated_at": utcnow()})
    return str(row["phone_number"])


# --- short codes ------------------------------------------------------------------------------


async def add_short_code(
    uow: UnitOfWork,
    organization_id: str,
    code: str,
    *,
    country_code: str = "US",
    profile_id: str | None = None,
) -> RowMapping:
    """Provision a short code for the organization (the CLI; Telnyx has no API for it)."""
    if not phone.SHORT_CODE.match(code):
        raise invalid("/short_code", f"'{code}' is not a short code (3 to 8 digits).")
    if not COUNTRY_RE.match(country_code):
        raise invalid("/country_code", f"'{country_code}' is not an ISO 3166 alpha-2 code.")
    if profile_id:
        await require_profile_of(uow, organization_id, profile_id, "/messaging_profile_id")
    if await repo.find_short_codes(uow, code, country_code=country_code):
        raise ApiError(
            422,
            "10012",
            "Short code not available",
            f"Short code {code} ({country_code}) already exists on this server.",
            pointer="/short_code",
            should_retry=False,
        )
    now = utcnow()
    short_code_id = new_uuid()
    await repo.insert_short_code(
        uow,
        {
            "id": short_code_id,
            "organization_id": organization_id,
            "short_code": code,
            "country_code": country_code,
            "messaging_profile_id": profile_id or None,
            "tags": [],
            "rate_limit": None,
            "created_at": now,
            "updated_at": now,
        },
    )
    return await require_short_code(uow, organization_id, short_code_id)


async def require_short_code(
    uow: UnitOfWork, organization_id: str, short_code_id: str
) -> RowMapping:
    row = await repo.get_short_code(uow, organization_id, short_code_id)
    if row is None:
        raise not_found("Short code", f"Short code '{short_code_id}' not found.")
    return row


async def list_short_codes(
    uow: UnitOfWork, organization_id: str, profile_id: str | None, page: Page
) -> Rows:
    """`profile_id` `"null"` lists the short codes on no profile."""
    unassigned = profile_id == "null"
    return await repo.list_short_codes(
        uow, organization_id, None if unassigned else profile_id, unassigned, page.offset, page.size
    )


async def update_short_code(
    uow: UnitOfWork, organization_id: str, short_code_id: str, body: ShortCodeUpdate
) -> RowMapping:
    row = await require_short_code(uow, organization_id, short_code_id)
    values: dict[str, Any] = {"updated_at": utcnow()}
    if body.messaging_profile_id:
        await require_profile_of(
            uow, organization_id, body.messaging_profile_id, "/messaging_profile_id"
        )
        values["messaging_profile_id"] = body.messaging_profile_id
    else:
        values["messaging_profile_id"] = None
    if body.tags is not None:
        values["tags"] = list(body.tags)
    await repo.update_short_code(uow, row["id"], values)
    return await require_short_code(uow, organization_id, row["id"])


# --- alphanumeric sender IDs ------------------------------------------------------------------


async def create_alphanumeric_sender_id(
    uow: UnitOfWork, organization_id: str, body: AlphanumericSenderIdCreate
) -> RowMapping:
    await require_profile_of(
        uow, organization_id, body.messaging_profile_id, "/messaging_profile_id"
    )
    fallback = body.us_long_code_fallback or None
    if fallback is not None:
        if phone.parse(fallback) is None:
            raise not_e164("/us_long_code_fallback", fallback)
        if await find_owned_number(uow, organization_id, fallback) is None:
            raise invalid(
                "/us_long_code_fallback",
                f"{fallback} is not one of your phone numbers.",
                code="10017",
                title="Associated resource does not exist",
            )
    if await repo.find_alphanumeric(uow, body.messaging_profile_id, body.alphanumeric_sender_id):
        raise invalid(
            "/alphanumeric_sender_id",
            f"'{body.alphanumeric_sender_id}' is already registered on this messaging profile.",
            code="10012",
            title="Duplicate resource",
        )
    now = utcnow()
    sender_id = new_uuid()
    await repo.insert_alphanumeric(
        uow,
        {
            "id": sender_id,
            "organization_id": organization_id,
            "alphanumeric_sender_id": body.alphanumeric_sender_id,
            "messaging_profile_id": body.messaging_profile_id,
            "us_long_code_fallback": fallback,
            "created_at": now,
            "updated_at": now,
        },
    )
    return await require_alphanumeric_sender_id(uow, organization_id, sender_id)


async def require_alphanumeric_sender_id(
    uow: UnitOfWork, organization_id: str, sender_id: str
) -> RowMapping:
    row = await repo.get_alphanumeric(uow, organization_id, sender_id)
    if row is None:
        raise not_found(
            "Alphanumeric sender ID", f"Alphanumeric sender ID '{sender_id}' not found."
        )
    return row


async def list_alphanumeric_sender_ids(
    uow: UnitOfWork, organization_id: str, profile_id: str | None, page: Page
) -> Rows:
    return await repo.list_alphanumeric(uow, organization_id, profile_id, page.offset, page.size)


async def delete_alphanumeric_sender_id(
    uow: UnitOfWork, organization_id: str, sender_id: str
) -> RowMapping:
    """Delete and return the sender ID as it was."""
    row = await require_alphanumeric_sender_id(uow, organization_id, sender_id)
    await repo.delete_alphanumeric(uow, sender_id)
    return row


# --- bulk updates -----------------------------------------------------------------------------


async def create_bulk_update(
    uow: UnitOfWork, organization_id: str, body: BulkUpdateCreate
) -> RowMapping:
    """Accept a bulk profile assignment: every number `pending`, processed by a job."""
    profile_id = body.messaging_profile_id or None
    if profile_id is not None:
        await require_profile_of(uow, organization_id, profile_id, "/messaging_profile_id")
    numbers = list(dict.fromkeys(n.strip() for n in body.numbers))
    now = utcnow()
    order_id = new_uuid()
    await repo.insert_bulk_update(
        uow,
        {
            "order_id": order_id,
            "organization_id": organization_id,
            "messaging_profile_id": profile_id,
            "assign_only": body.assign_only,
            "numbers": numbers,
            "success": [],
            "pending": numbers,
            "failed": [],
            "created_at": now,
            "updated_at": now,
        },
    )
    # One organization's bulk updates apply in the order they were accepted.
    await enqueue(
        uow,
        BULK_UPDATE_JOB,
        {"order_id": order_id},
        group_key=f"{BULK_UPDATE_JOB}:{organization_id}",
    )
    return await require_bulk_update(uow, organization_id, order_id)


async def require_bulk_update(uow: UnitOfWork, organization_id: str, order_id: str) -> RowMapping:
    row = await repo.get_bulk_update(uow, order_id, organization_id)
    if row is None:
        raise not_found("Bulk update", f"Bulk update '{order_id}' not found.")
    return row


async def process_bulk_update(uow: UnitOfWork, order_id: str) -> None:
    """Apply a bulk update: the organization's valid numbers succeed, the rest fail."""
    order = await repo.get_bulk_update(uow, order_id)
    if order is None or not order["pending"]:
        return
    organization_id = order["organization_id"]
    profile_id = order["messaging_profile_id"]
    pending = list(order["pending"])
    success, failed = list(order["success"]), list(order["failed"])
    # The profile may have been deleted since the update was accepted.
    profile_ok = profile_id is None or await repo.profile_exists(uow, organization_id, profile_id)
    valid = [n for n in pending if phone.is_e164(n)]
    owned = await repo.numbers_by_e164(uow, valid, organization_id) if profile_ok else {}
    ids: list[str] = []
    for number in pending:
        row = owned.get(number)
        if row is None:
            failed.append(number)
        else:
            ids.append(row["id"])
            success.append(number)
    now = utcnow()
    values: dict[str, Any] = {"messaging_profile_id": profile_id, "updated_at": now}
    if not order["assign_only"]:
        values.update(messaging_product=DEFAULT_PRODUCT, traffic_type=DEFAULT_PRODUCT)
    await repo.update_numbers(uow, ids, values)
    await repo.update_bulk_update(
        uow, order_id, {"success": success, "pending": [], "failed": failed, "updated_at": now}
    )
