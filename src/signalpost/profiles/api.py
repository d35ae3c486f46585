"""Routes of messaging profiles and their auto-response configs (contract §8)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from signalpost.accounts.deps import Ctx, CurrentOrg
from signalpost.context import AppContext, outbound_guard
from signalpost.kit.clock import parse_datetime
from signalpost.kit.errors import bad_parameter
from signalpost.kit.netguard import refuse_blocked
from signalpost.kit.pagination import Page, PageNumber, PageSize, page_params
from signalpost.kit.urls import is_http_url
from signalpost.numbers import service as numbers_service
from signalpost.numbers.schemas import (
    alphanumeric_sender_id_out,
    phone_number_out,
    short_code_out,
)
from signalpost.profiles import metrics, service
from signalpost.profiles.repository import AutorespFilter, NameFilter
from signalpost.profiles.schemas import (
    URL_FIELDS,
    AutorespConfigBody,
    ProfileCreate,
    ProfileUpdate,
    autoresp_config_out,
    profile_out,
)

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Authentication failed (10009)."},
    404: {"description": "Messaging profile not found (10005)."},
}
LIST_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid query parameter (10015), e.g. time_frame; see source.parameter."},
}
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    400: {
        "description": "Malformed JSON (10023) or request (10015); a webhook URL this server "
        "may not reach (10003, outbound guard)."
    },
    422: {
        "description": "Missing (10004) or invalid (10015, URLs 10003) field; see source.pointer."
    },
}

profiles_router = APIRouter(
    prefix="/messaging_profiles", tags=["messaging profiles"], responses=ERRORS
)
router = APIRouter()  # mounted under /v2; holds profiles_router and the metrics list

PageDep = Annotated[Page, Depends(page_params)]


async def name_filter(
    name: Annotated[str | None, Query(alias="filter[name]")] = None,
    name_eq: Annotated[str | None, Query(alias="filter[name][eq]")] = None,
    name_contains: Annotated[str | None, Query(alias="filter[name][contains]")] = None,
) -> NameFilter:
    if name is not None and name_eq is not None and name != name_eq:
        raise bad_parameter("filter[name][eq]", "filter[name] and filter[name][eq] disagree.")
    return NameFilter(equals=name_eq if name_eq is not None else name, contains=name_contains)


def _datetime(parameter: str, raw: str | None) -> datetime | None:
    if raw is None or raw == "":
        return None
    try:
        return parse_datetime(raw)
    except ValueError:
        raise bad_parameter(parameter, f"{parameter} must be an ISO 8601 date-time.") from None


async def autoresp_filter(
    country_code: Annotated[str | None, Query()] = None,
    created_gte: Annotated[str | None, Query(alias="created_at[gte]")] = None,
    created_lte: Annotated[str | None, Query(alias="created_at[lte]")] = None,
    updated_gte: Annotated[str | None, Query(alias="updated_at[gte]")] = None,
    updated_lte: Annotated[str | None, Query(alias="updated_at[lte]")] = None,
) -> AutorespFilter:
    return AutorespFilter(
        country_code=country_code or None,
        created_gte=_datetime("created_at[gte]", created_gte),
        created_lte=_datetime("created_at[lte]", created_lte),
        updated_gte=_datetime("updated_at[gte]", updated_gte),
        updated_lte=_datetime("updated_at[lte]", updated_lte),
    )


async def autoresp_page(number: PageNumber = None, size: PageSize = None) -> Page:
    # The SDKs do not page through this list, so by default it is one page of up to 250.
    return Page(number=number or 1, size=size or 250)


# --- profiles ---------------------------------------------------------------------------------


async def _refuse_blocked_urls(ctx: AppContext, body: ProfileCreate | ProfileUpdate) -> None:
    """400 for a webhook URL the outbound guard refuses (looked up before any transaction; a URL
    that is not an http(s) URL at all gets the service's own error)."""
    fields = [(f"/{name}", getattr(body, name)) for name in URL_FIELDS]
    await refuse_blocked(
        outbound_guard(ctx), [(p, v) for p, v in fields if isinstance(v, str) and is_http_url(v)]
    )


@profiles_router.get("")
async def list_profiles(
    ctx: Ctx,
    org: CurrentOrg,
    page: PageDep,
    name: Annotated[NameFilter, Depends(name_filter)],
) -> dict[str, Any]:
    """List the organization's messaging profiles, oldest first."""
    async with ctx.db.reading() as uow:
        rows, total = await service.list_profiles(uow, org, name, page)
    return page.envelope([profile_out(r) for r in rows], total)


@profiles_router.post("", responses=BODY_ERRORS)
async def create_profile(ctx: Ctx, org: CurrentOrg, body: ProfileCreate) -> dict[str, Any]:
    """Create a messaging profile."""
    await _refuse_blocked_urls(ctx, body)
    async with ctx.db.transaction() as uow:
        row = await service.create_profile(uow, org, body, settings=ctx.settings)
    return {"data": profile_out(row)}


@profiles_router.get("/{profile_id}")
async def retrieve_profile(ctx: Ctx, org: CurrentOrg, profile_id: str) -> dict[str, Any]:
    """Retrieve a messaging profile."""
    async with ctx.db.reading() as uow:
        row = await service.require_profile(uow, org.id, profile_id)
    return {"data": profile_out(row)}


@profiles_router.patch("/{profile_id}", responses=BODY_ERRORS)
async def update_profile(
    ctx: Ctx, org: CurrentOrg, profile_id: str, body: ProfileUpdate
) -> dict[str, Any]:
    """Change the fields sent; `null` for number_pool_settings / url_shortener_settings disables them."""
    await _refuse_blocked_urls(ctx, body)
    async with ctx.db.transaction() as uow:
        row = await service.update_profile(uow, org, profile_id, body, settings=ctx.settings)
    return {"data": profile_out(row)}


@profiles_router.delete("/{profile_id}")
async def delete_profile(ctx: Ctx, org: CurrentOrg, profile_id: str) -> dict[str, Any]:
    """Delete a messaging profile; its numbers and short codes stay, detached from it."""
    async with ctx.db.transaction() as uow:
        row = await service.delete_profile(uow, org, profile_id)
    return {"data": profile_out(row)}


@profiles_router.post("/{profile_id}/actions/regenerate_secret")
async def regenerate_secret(ctx: Ctx, org: CurrentOrg, profile_id: str) -> dict[str, Any]:
    """Replace the profile's `v1_secret` with a new random one."""
    async with ctx.db.transaction() as uow:
        row = await service.regenerate_secret(uow, org, profile_id)
    return {"data": profile_out(row)}


@profiles_router.get("/{profile_id}/phone_numbers")
async def list_phone_numbers(
    ctx: Ctx, org: CurrentOrg, profile_id: str, page: PageDep
) -> dict[str, Any]:
    """Phone numbers assigned to the profile, with their messaging settings."""
    async with ctx.db.reading() as uow:
        rows, total = await service.list_phone_numbers(uow, org, profile_id, page)
        health = await numbers_service.numbers_health(
            uow, org.id, [r["phone_number"] for r in rows]
        )
    return page.envelope([phone_number_out(r, health[r["phone_number"]]) for r in rows], total)


@profiles_router.get("/{profile_id}/short_codes")
async def list_short_codes(
    ctx: Ctx, org: CurrentOrg, profile_id: str, page: PageDep
) -> dict[str, Any]:
    """Short codes assigned to the profile."""
    async with ctx.db.reading() as uow:
        rows, total = await service.list_short_codes(uow, org, profile_id, page)
    return page.envelope([short_code_out(r) for r in rows], total)


@profiles_router.get("/{profile_id}/alphanumeric_sender_ids")
async def list_alphanumeric_sender_ids(
    ctx: Ctx, org: CurrentOrg, profile_id: str, page: PageDep
) -> dict[str, Any]:
    """Alphanumeric sender IDs registered on the profile."""
    async with ctx.db.reading() as uow:
        rows, total = await service.list_alphanumeric_sender_ids(uow, org, profile_id, page)
    return page.envelope([alphanumeric_sender_id_out(r) for r in rows], total)


# --- auto-response configs --------------------------------------------------------------------


@profiles_router.get("/{profile_id}/autoresp_configs")
async def list_autoresp_configs(
    ctx: Ctx,
    org: CurrentOrg,
    profile_id: str,
    page: Annotated[Page, Depends(autoresp_page)],
    f: Annotated[AutorespFilter, Depends(autoresp_filter)],
) -> dict[str, Any]:
    """The profile's auto-response configs (`{data, meta}`; the SDKs do not iterate pages)."""
    async with ctx.db.reading() as uow:
        rows, total = await service.list_autoresp_configs(uow, org, profile_id, f, page)
    return page.envelope([autoresp_config_out(r) for r in rows], total)


@profiles_router.post("/{profile_id}/autoresp_configs", responses=BODY_ERRORS)
async def create_autoresp_config(
    ctx: Ctx, org: CurrentOrg, profile_id: str, body: AutorespConfigBody
) -> dict[str, Any]:
    """Create an auto-response config: a reply sent when an inbound message matches a keyword."""
    async with ctx.db.transaction() as uow:
        row = await service.create_autoresp_config(uow, org, profile_id, body)
    return {"data": autoresp_config_out(row)}


@profiles_router.get("/{profile_id}/autoresp_configs/{autoresp_cfg_id}")
async def retrieve_autoresp_config(
    ctx: Ctx, org: CurrentOrg, profile_id: str, autoresp_cfg_id: str
) -> dict[str, Any]:
    """Retrieve an auto-response config."""
    async with ctx.db.reading() as uow:
        row = await service.get_autoresp_config(uow, org, profile_id, autoresp_cfg_id)
    return {"data": autoresp_config_out(row)}


@profiles_router.put("/{profile_id}/autoresp_configs/{autoresp_cfg_id}", responses=BODY_ERRORS)
async def replace_autoresp_config(
    ctx: Ctx, org: CurrentOrg, profile_id: str, autoresp_cfg_id: str, body: AutorespConfigBody
) -> dict[str, Any]:
    """Replace an auto-response config as a whole."""
    async with ctx.db.transaction() as uow:
        row = await service.replace_autoresp_config(uow, org, profile_id, autoresp_cfg_id, body)
    return {"data": autoresp_config_out(row)}


@profiles_router.delete("/{profile_id}/autoresp_configs/{autoresp_cfg_id}")
async def delete_autoresp_config(
    ctx: Ctx, org: CurrentOrg, profile_id: str, autoresp_cfg_id: str
) -> str:
    """Delete an auto-response config; the answer is the JSON string `"OK"`."""
    async with ctx.db.transaction() as uow:
        await service.delete_autoresp_config(uow, org, profile_id, autoresp_cfg_id)
    return "OK"


# --- metrics ----------------------------------------------------------------------------------

TimeFrame = Annotated[str | None, Query(description="1h, 3h, 24h (default), 3d, 7d or 30d.")]


@profiles_router.get("/{profile_id}/metrics", responses=LIST_ERRORS)
async def retrieve_profile_metrics(
    ctx: Ctx, org: CurrentOrg, profile_id: str, time_frame: TimeFrame = None
) -> dict[str, Any]:
    """The profile's message counts and spend over the time frame, overall and per message type
    in time buckets (`MessagingProfileDetailedMetrics`), computed from its stored messages."""
    frame = metrics.time_frame(time_frame)
    async with ctx.db.reading() as uow:
        await service.require_profile(uow, org.id, profile_id)
        data = await metrics.detailed(uow, org.id, profile_id, frame)
    return {"data": data}


@router.get(
    "/messaging_profile_metrics", tags=["messaging profiles"], responses={**LIST_ERRORS, **ERRORS}
)
async def list_profile_metrics(
    ctx: Ctx,
    org: CurrentOrg,
    page: PageDep,
    time_frame: TimeFrame = None,
    ids: Annotated[
        str | None, Query(alias="id", description="Only these profiles (comma-separated ids).")
    ] = None,
) -> dict[str, Any]:
    """Message counts and spend of each messaging profile over the time frame
    (`MessagingProfileHighLevelMetrics`), a page of profiles at a time."""
    frame = metrics.time_frame(time_frame)
    async with ctx.db.reading() as uow:
        if ids:
            wanted = [i.strip() for i in ids.split(",") if i.strip()]
            found = [p for p in wanted if await service.get_profile(uow, org.id, p) is not None]
            total = len(found)
            profile_ids = found[page.offset : page.offset + page.size]
        else:
            rows, total = await service.list_profiles(uow, org, NameFilter(), page)
            profile_ids = [r["id"] for r in rows]
        data = await metrics.high_level(uow, org.id, profile_ids, frame) if profile_ids else []
    return page.envelope(data, total)


router.include_router(profiles_router)
