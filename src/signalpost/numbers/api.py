"""Routes of the number inventory: number orders, phone numbers with messaging settings, mobile
numbers, short codes, alphanumeric sender IDs and bulk updates (contract §7.2–7.6, §4.7, §4.8)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Depends, Query

from signalpost.accounts.deps import Ctx, CurrentOrg
from signalpost.kit.clock import parse_datetime
from signalpost.kit.errors import bad_parameter
from signalpost.kit.pagination import Page, int_param, page_params
from signalpost.numbers import orders, service
from signalpost.numbers.detailed import (
    DetailedFilter,
    detailed_filter,
    phone_number_detailed_out,
)
from signalpost.numbers.repository import NumberFilter, NumberType, OrderFilter
from signalpost.numbers.schemas import (
    AlphanumericSenderIdCreate,
    BulkUpdateCreate,
    MessagingSettingsUpdate,
    NumberOrderCreate,
    NumberOrderUpdate,
    ShortCodeUpdate,
    alphanumeric_sender_id_out,
    bulk_update_out,
    mobile_phone_number_out,
    number_order_out,
    phone_number_out,
    short_code_out,
)

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Authentication failed (10009)."},
    404: {"description": "Not found, or another organization's (10005)."},
}
LIST_ERRORS: dict[int | str, dict[str, Any]] = {
    401: ERRORS[401],
    400: {"description": "Invalid query parameter (10015); see source.parameter."},
}
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    400: {"description": "Malformed JSON (10023) or request (10015)."},
    422: {
        "description": "Missing (10004) or invalid (10015) field, number not +E.164 (10016), "
        "not available or duplicate (10012), unknown messaging profile (10017); "
        "see source.pointer."
    },
}

router = APIRouter(tags=["numbers"], responses=ERRORS)

PageDep = Annotated[Page, Depends(page_params)]

_TYPES: dict[str, NumberType] = {
    "longcode": "long-code",
    "long-code": "long-code",
    "tollfree": "toll-free",
    "toll-free": "toll-free",
    "shortcode": "short-code",
    "short-code": "short-code",
}
_ORDER_STATUSES = ("pending", "success", "failure")
Sort = Literal["asc", "desc"] | None


def _e164_filter_value(raw: str) -> str:
    value = raw.strip()
    # A `+` sent unencoded in a query string arrives as a space.
    return "+" + value if value[:1].isdigit() else value


def number_filter(
    profile_id: Annotated[str | None, Query(alias="filter[messaging_profile_id]")] = None,
    number: Annotated[str | None, Query(alias="filter[phone_number]")] = None,
    contains: Annotated[str | None, Query(alias="filter[phone_number][contains]")] = None,
    number_type: Annotated[str | None, Query(alias="filter[type]")] = None,
) -> NumberFilter:
    kind: NumberType | None = None
    if number_type:
        kind = _TYPES.get(number_type.strip().lower())
        if kind is None:
            raise bad_parameter(
                "filter[type]", "filter[type] must be one of: tollfree, longcode, shortcode."
            )
    numbers: tuple[str, ...] = ()
    if number is not None and number.strip():
        numbers = tuple(_e164_filter_value(n) for n in number.split(",") if n.strip())
    return NumberFilter(
        messaging_profile_id=profile_id if profile_id and profile_id != "null" else None,
        unassigned=profile_id == "null",
        phone_numbers=numbers,
        contains=contains.strip() or None if contains is not None else None,
        type=kind,
    )


def number_sort(
    sort: Annotated[str | None, Query(alias="sort[phone_number]")] = None,
) -> Sort:
    if not sort:
        return None
    value = sort.strip().lower()
    if value not in ("asc", "desc"):
        raise bad_parameter("sort[phone_number]", "sort[phone_number] must be asc or desc.")
    return cast(Sort, value)


def _datetime(parameter: str, raw: str | None) -> datetime | None:
    if raw is None or raw == "":
        return None
    try:
        return parse_datetime(raw)
    except ValueError:
        raise bad_parameter(parameter, f"{parameter} must be an ISO 8601 date-time.") from None


def order_filter(
    status: Annotated[str | None, Query(alias="filter[status]")] = None,
    reference: Annotated[str | None, Query(alias="filter[customer_reference]")] = None,
    count: Annotated[str | None, Query(alias="filter[phone_numbers_count]")] = None,
    met: Annotated[str | None, Query(alias="filter[requirements_met]")] = None,
    created_gt: Annotated[str | None, Query(alias="filter[created_at][gt]")] = None,
    created_lt: Annotated[str | None, Query(alias="filter[created_at][lt]")] = None,
) -> OrderFilter:
    if status and status not in _ORDER_STATUSES:
        raise bad_parameter("filter[status]", "filter[status] must be pending, success or failure.")
    number_count = (
        int_param("filter[phone_numbers_count]", count, 0, 0, 2**31 - 1) if count else None
    )
    requirements_met: bool | None = None
    if met:
        if met.lower() not in ("true", "false"):
            raise bad_parameter(
                "filter[requirements_met]", "filter[requirements_met] must be true or false."
            )
        requirements_met = met.lower() == "true"
    return OrderFilter(
        status=status or None,
        customer_reference=reference or None,
        phone_numbers_count=number_count,
        requirements_met=requirements_met,
        created_after=_datetime("filter[created_at][gt]", created_gt),
        created_before=_datetime("filter[created_at][lt]", created_lt),
    )


async def profile_filter(
    profile_id: Annotated[str | None, Query(alias="filter[messaging_profile_id]")] = None,
) -> str | None:
    return profile_id or None


ProfileFilter = Annotated[str | None, Depends(profile_filter)]


# --- number orders ----------------------------------------------------------------------------


@router.post("/number_orders", responses=BODY_ERRORS)
async def create_number_order(ctx: Ctx, org: CurrentOrg, body: NumberOrderCreate) -> dict[str, Any]:
    """Order phone numbers. In the sandbox an accepted order has completed (status `success`);
    a number that is already owned by anyone rejects the whole order (422, code 10012)."""
    async with ctx.db.transaction() as uow:
        row = await orders.create_order(uow, org.id, body)
    return {"data": number_order_out(row)}


@router.get("/number_orders", responses=LIST_ERRORS)
async def list_number_orders(
    ctx: Ctx,
    org: CurrentOrg,
    page: PageDep,
    f: Annotated[OrderFilter, Depends(order_filter)],
) -> dict[str, Any]:
    """The organization's number orders, newest first."""
    async with ctx.db.reading() as uow:
        rows, total = await orders.list_orders(uow, org.id, f, page)
    return page.envelope([number_order_out(r) for r in rows], total)


@router.get("/number_orders/{number_order_id}")
async def retrieve_number_order(ctx: Ctx, org: CurrentOrg, number_order_id: str) -> dict[str, Any]:
    """Retrieve a number order with its numbers."""
    async with ctx.db.reading() as uow:
        row = await orders.require_order(uow, org.id, number_order_id)
    return {"data": number_order_out(row)}


@router.patch("/number_orders/{number_order_id}", responses=BODY_ERRORS)
async def update_number_order(
    ctx: Ctx, org: CurrentOrg, number_order_id: str, body: NumberOrderUpdate
) -> dict[str, Any]:
    """Change an order's `customer_reference` (regulatory requirements are always met here)."""
    async with ctx.db.transaction() as uow:
        row = await orders.update_order(uow, org.id, number_order_id, body)
    return {"data": number_order_out(row)}


# --- phone numbers with messaging settings ----------------------------------------------------


@router.get("/phone_numbers/messaging", responses=LIST_ERRORS)
async def list_phone_numbers(
    ctx: Ctx,
    org: CurrentOrg,
    page: PageDep,
    f: Annotated[NumberFilter, Depends(number_filter)],
    sort: Annotated[Sort, Depends(number_sort)],
) -> dict[str, Any]:
    """The organization's phone numbers with their messaging settings (oldest first unless
    `sort[phone_number]`). `filter[type]=shortcode` is always empty: see `/short_codes`."""
    async with ctx.db.reading() as uow:
        rows, total = await service.list_numbers(uow, org.id, f, sort, page)
        health = await service.numbers_health(uow, org.id, [r["phone_number"] for r in rows])
    return page.envelope([phone_number_out(r, health[r["phone_number"]]) for r in rows], total)


@router.get("/phone_numbers/{id}/messaging")
async def retrieve_phone_number(ctx: Ctx, org: CurrentOrg, id: str) -> dict[str, Any]:
    """A phone number with its messaging settings; `id` is its resource id or the +E.164 number."""
    async with ctx.db.reading() as uow:
        row = await service.require_number(uow, org.id, id)
        health = await service.number_health(uow, org.id, row["phone_number"])
    return {"data": phone_number_out(row, health)}


@router.patch("/phone_numbers/{id}/messaging", responses=BODY_ERRORS)
async def update_phone_number(
    ctx: Ctx, org: CurrentOrg, id: str, body: MessagingSettingsUpdate
) -> dict[str, Any]:
    """Update messaging settings: `messaging_profile_id` (`""` unassigns, null or omitted keeps
    it), `messaging_product`, `tags` (replaced)."""
    async with ctx.db.transaction() as uow:
        row = await service.update_messaging(uow, org.id, id, body)
        health = await service.number_health(uow, org.id, row["phone_number"])
    return {"data": phone_number_out(row, health)}


# The 2.x SDKs call `/messaging_phone_numbers` (list, retrieve, update): the same objects.
for _legacy_path, _handler, _method, _op in (
    ("/messaging_phone_numbers", list_phone_numbers, "GET", "list_messaging_phone_numbers"),
    (
        "/messaging_phone_numbers/{id}",
        retrieve_phone_number,
        "GET",
        "retrieve_messaging_phone_number",
    ),
    (
        "/messaging_phone_numbers/{id}",
        update_phone_number,
        "PATCH",
        "update_messaging_phone_number",
    ),
):
    router.add_api_route(
        _legacy_path,
        _handler,
        methods=[_method],
        responses=BODY_ERRORS if _method == "PATCH" else LIST_ERRORS,
        operation_id=_op,
        summary=f"{_handler.__name__.replace('_', ' ').capitalize()} (legacy path)",
        description=(_handler.__doc__ or "") + " The path the 2.x SDKs call.",
    )


# --- phone numbers (the numbers API, with their messaging fields) -----------------------------


@router.get("/phone_numbers", responses=LIST_ERRORS)
async def list_numbers_detailed(
    ctx: Ctx,
    org: CurrentOrg,
    page: PageDep,
    f: Annotated[DetailedFilter, Depends(detailed_filter)],
) -> dict[str, Any]:
    """The organization's phone numbers (`NumbersPhoneNumberDetailed`) with their messaging
    profile; filters `filter[tag]`, `[phone_number]` (digits), `[status]`,
    `[country_iso_alpha2]`, `[number_type][eq]`, `[source]`, `[without_tags]`, …; `sort`
    (default: newest first)."""
    async with ctx.db.reading() as uow:
        rows, total = await service.list_numbers_detailed(uow, org.id, f, page)
    return page.envelope([phone_number_detailed_out(r) for r in rows], total)


@router.get("/phone_numbers/{id}")
async def retrieve_number_detailed(ctx: Ctx, org: CurrentOrg, id: str) -> dict[str, Any]:
    """A phone number (`NumbersPhoneNumberDetailed`); `id` is its resource id or +E.164 number."""
    async with ctx.db.reading() as uow:
        row = await service.require_number(uow, org.id, id)
        named = await service.number_with_profile_name(uow, org.id, row["id"])
    return {"data": phone_number_detailed_out(named)}


@router.get("/mobile_phone_numbers/messaging", responses=LIST_ERRORS)
async def list_mobile_phone_numbers(ctx: Ctx, org: CurrentOrg, page: PageDep) -> dict[str, Any]:
    """The organization's mobile numbers with their messaging settings."""
    async with ctx.db.reading() as uow:
        rows, total = await service.list_numbers(
            uow, org.id, NumberFilter(mobile_only=True), None, page
        )
    return page.envelope([mobile_phone_number_out(r) for r in rows], total)


@router.get("/mobile_phone_numbers/{id}/messaging")
async def retrieve_mobile_phone_number(ctx: Ctx, org: CurrentOrg, id: str) -> dict[str, Any]:
    """A mobile number with its messaging settings (resource id or +E.164 number)."""
    async with ctx.db.reading() as uow:
        row = await service.require_mobile_number(uow, org.id, id)
    return {"data": mobile_phone_number_out(row)}


# --- short codes ------------------------------------------------------------------------------


@router.get("/short_codes", responses=LIST_ERRORS)
async def list_short_codes(
    ctx: Ctx, org: CurrentOrg, page: PageDep, profile_id: ProfileFilter
) -> dict[str, Any]:
    """The organization's short codes; `filter[messaging_profile_id]=null` for unassigned ones."""
    async with ctx.db.reading() as uow:
        rows, total = await service.list_short_codes(uow, org.id, profile_id, page)
    return page.envelope([short_code_out(r) for r in rows], total)


@router.get("/short_codes/{id}")
async def retrieve_short_code(ctx: Ctx, org: CurrentOrg, id: str) -> dict[str, Any]:
    """Retrieve a short code."""
    async with ctx.db.reading() as uow:
        row = await service.require_short_code(uow, org.id, id)
    return {"data": short_code_out(row)}


@router.patch("/short_codes/{id}", responses=BODY_ERRORS)
async def update_short_code(
    ctx: Ctx, org: CurrentOrg, id: str, body: ShortCodeUpdate
) -> dict[str, Any]:
    """Assign a short code to a messaging profile (`""` unassigns) and replace its tags."""
    async with ctx.db.transaction() as uow:
        row = await service.update_short_code(uow, org.id, id, body)
    return {"data": short_code_out(row)}


# --- alphanumeric sender IDs ------------------------------------------------------------------


@router.get("/alphanumeric_sender_ids", responses=LIST_ERRORS)
async def list_alphanumeric_sender_ids(
    ctx: Ctx, org: CurrentOrg, page: PageDep, profile_id: ProfileFilter
) -> dict[str, Any]:
    """The organization's alphanumeric sender IDs, oldest first."""
    async with ctx.db.reading() as uow:
        rows, total = await service.list_alphanumeric_sender_ids(uow, org.id, profile_id, page)
    return page.envelope([alphanumeric_sender_id_out(r) for r in rows], total)


@router.post("/alphanumeric_sender_ids", responses=BODY_ERRORS)
async def create_alphanumeric_sender_id(
    ctx: Ctx, org: CurrentOrg, body: AlphanumericSenderIdCreate
) -> dict[str, Any]:
    """Register an alphanumeric sender ID (1–11 letters, digits, spaces; one letter at least) on
    one of the organization's messaging profiles."""
    async with ctx.db.transaction() as uow:
        row = await service.create_alphanumeric_sender_id(uow, org.id, body)
    return {"data": alphanumeric_sender_id_out(row)}


@router.get("/alphanumeric_sender_ids/{id}")
async def retrieve_alphanumeric_sender_id(ctx: Ctx, org: CurrentOrg, id: str) -> dict[str, Any]:
    """Retrieve an alphanumeric sender ID."""
    async with ctx.db.reading() as uow:
        row = await service.require_alphanumeric_sender_id(uow, org.id, id)
    return {"data": alphanumeric_sender_id_out(row)}


@router.delete("/alphanumeric_sender_ids/{id}")
async def delete_alphanumeric_sender_id(ctx: Ctx, org: CurrentOrg, id: str) -> dict[str, Any]:
    """Delete an alphanumeric sender ID; the answer is the deleted object."""
    async with ctx.db.transaction() as uow:
        row = await service.delete_alphanumeric_sender_id(uow, org.id, id)
    return {"data": alphanumeric_sender_id_out(row)}


# --- bulk updates -----------------------------------------------------------------------------


async def _create_bulk_update(ctx: Ctx, org: CurrentOrg, body: BulkUpdateCreate) -> dict[str, Any]:
    async with ctx.db.transaction() as uow:
        row = await service.create_bulk_update(uow, org.id, body)
    return {"data": bulk_update_out(row)}


async def _retrieve_bulk_update(ctx: Ctx, org: CurrentOrg, order_id: str) -> dict[str, Any]:
    async with ctx.db.transaction() as uow:
        row = await service.require_bulk_update(uow, org.id, order_id)
    return {"data": bulk_update_out(row)}


_BULK_CREATE_DOC = (
    'Assign many numbers to a messaging profile (`""` unassigns). Accepted at once with every '
    "number `pending`; a job then moves each to `success` or `failed` (not the organization's, or "
    "not +E.164). With `assign_only` only the profile changes; without it the messaging product "
    "is also reset to the default."
)
_BULK_GET_DOC = "Progress of a bulk update: numbers `pending`, `success` and `failed`."

# The SDKs call `/messaging_numbers_bulk_updates`; the seed document writes
# `/messaging_numbers/bulk_updates`. Both are served.
for _path, _suffix in (
    ("/messaging_numbers_bulk_updates", ""),
    ("/messaging_numbers/bulk_updates", "_alias"),
):
    router.add_api_route(
        _path,
        _create_bulk_update,
        methods=["POST"],
        responses=BODY_ERRORS,
        summary="Create a bulk update",
        description=_BULK_CREATE_DOC,
        operation_id=f"create_messaging_numbers_bulk_update{_suffix}",
    )
    router.add_api_route(
        _path + "/{order_id}",
        _retrieve_bulk_update,
        methods=["GET"],
        summary="Retrieve a bulk update",
        description=_BULK_GET_DOC,
        operation_id=f"retrieve_messaging_numbers_bulk_update{_suffix}",
    )
