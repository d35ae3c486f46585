"""Messaging profiles and auto-response configs: create, read, change, delete (never commits)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping

from signalpost.accounts.service import Organization
from signalpost.kit.clock import utcnow
from signalpost.kit.db import UnitOfWork
from signalpost.kit.errors import ApiError, not_found
from signalpost.kit.ids import base62, new_uuid
from signalpost.kit.pagination import Page
from signalpost.links import service as links
from signalpost.profiles import repository as repo
from signalpost.profiles.repository import AutorespFilter, NameFilter
from signalpost.profiles.schemas import (
    CREATE_DEFAULTS,
    AutorespConfigBody,
    ProfileCreate,
    ProfileUpdate,
    check_urls,
)
from signalpost.settings import Settings

Rows = tuple[list[RowMapping], int]


def new_secret() -> str:
    return base62(32)


def _now() -> datetime:
    # Stored at the precision shown on the wire, so a timestamp a client read back can be used
    # as an inclusive `created_at[lte]` / `[gte]` bound and matches its own row.
    now = utcnow()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


async def get_profile(uow: UnitOfWork, organization_id: str, profile_id: str) -> RowMapping | None:
    """The organization's profile with this id, or None (another organization's id is None too)."""
    return await repo.get_profile(uow, organization_id, profile_id)


async def require_profile(uow: UnitOfWork, organization_id: str, profile_id: str) -> RowMapping:
    row = await repo.get_profile(uow, organization_id, profile_id)
    if row is None:
        raise not_found("Messaging profile", f"Messaging profile '{profile_id}' not found.")
    return row


async def create_profile(
    uow: UnitOfWork, org: Organization, body: ProfileCreate, *, settings: Settings
) -> RowMapping:
    given = body.given()
    check_urls(given)
    await _check_link_domain(uow, settings, org.id, given)
    now = _now()
    values: dict[str, Any] = {
        **CREATE_DEFAULTS,
        **given,
        "id": new_uuid(),
        "organization_id": org.id,
        "v1_secret": new_secret(),
        "created_at": now,
        "updated_at": now,
    }
    await repo.insert_profile(uow, values)
    return await require_profile(uow, org.id, values["id"])


async def _check_link_domain(
    uow: UnitOfWork, settings: Settings, organization_id: str, given: dict[str, Any]
) -> None:
    """`url_shortener_settings.domain` must be a link domain the organization may use (400)."""
    shortener = given.get("url_shortener_settings")
    if not shortener:
        return
    domain = shortener["domain"]
    if not await links.domain_available(uow, settings, organization_id, domain):
        raise ApiError(
            400,
            "10015",
            "Invalid value",
            f"'{domain}' is not a link domain available to this account; "
            "GET /v2/messaging_url_domains lists those that are.",
            pointer="/url_shortener_settings/domain",
            should_retry=False,
        )


async def list_profiles(uow: UnitOfWork, org: Organization, name: NameFilter, page: Page) -> Rows:
    return await repo.list_profiles(uow, org.id, name, page.offset, page.size)


async def update_profile(
    uow: UnitOfWork, org: Organization, profile_id: str, body: ProfileUpdate, *, settings: Settings
) -> RowMapping:
    await require_profile(uow, org.id, profile_id)
    given = body.given()
    check_urls(given)
    await _check_link_domain(uow, settings, org.id, given)
    if given:
        await repo.update_profile(uow, profile_id, {**given, "updated_at": _now()})
    return await require_profile(uow, org.id, profile_id)


async def delete_profile(uow: UnitOfWork, org: Organization, profile_id: str) -> RowMapping:
    """Delete and return the profile as it was."""
    row = await require_profile(uow, org.id, profile_id)
    await repo.delete_profile(uow, profile_id)
    return row


async def regenerate_secret(uow: UnitOfWork, org: Organization, profile_id: str) -> RowMapping:
    await require_profile(uow, org.id, profile_id)
    await repo.update_profile(uow, profile_id, {"v1_secret": new_secret(), "updated_at": _now()})
    return await require_profile(uow, org.id, profile_id)


async def list_phone_numbers(
    uow: UnitOfWork, org: Organization, profile_id: str, page: Page
) -> Rows:
    await require_profile(uow, org.id, profile_id)
    return await repo.list_phone_numbers(uow, org.id, profile_id, page.offset, page.size)


async def list_short_codes(uow: UnitOfWork, org: Organization, profile_id: str, page: Page) -> Rows:
    await require_profile(uow, org.id, profile_id)
    return await repo.list_short_codes(uow, org.id, profile_id, page.offset, page.size)


async def list_alphanumeric_sender_ids(
    uow: UnitOfWork, org: Organization, profile_id: str, page: Page
) -> Rows:
    await require_profile(uow, org.id, profile_id)
    return await repo.list_alphanumeric_sender_ids(uow, org.id, profile_id, page.offset, page.size)


# --- auto-response configs --------------------------------------------------------------------


async def _require_autoresp(uow: UnitOfWork, profile_id: str, config_id: str) -> RowMapping:
    row = await repo.get_autoresp(uow, profile_id, config_id)
    if row is None:
        raise not_found("Auto-response config", f"Auto-response config '{config_id}' not found.")
    return row


def _autoresp_values(body: AutorespConfigBody) -> dict[str, Any]:
    return {
        "op": body.op,
        "keywords": list(body.keywords),
        "country_code": body.country_code,
        "resp_text": body.resp_text,
    }


async def list_autoresp_configs(
    uow: UnitOfWork, org: Organization, profile_id: str, f: AutorespFilter, page: Page
) -> Rows:
    await require_profile(uow, org.id, profile_id)
    return await repo.list_autoresp(uow, profile_id, f, page.offset, page.size)


async def create_autoresp_config(
    uow: UnitOfWork, org: Organization, profile_id: str, body: AutorespConfigBody
) -> RowMapping:
    await require_profile(uow, org.id, profile_id)
    now = _now()
    config_id = new_uuid()
    await repo.insert_autoresp(
        uow,
        {
            **_autoresp_values(body),
            "id": config_id,
            "messaging_profile_id": profile_id,
            "created_at": now,
            "updated_at": now,
        },
    )
    return await _require_autoresp(uow, profile_id, config_id)


async def get_autoresp_config(
    uow: UnitOfWork, org: Organization, profile_id: str, config_id: str
) -> RowMapping:
    await require_profile(uow, org.id, profile_id)
    return await _require_autoresp(uow, profile_id, config_id)


async def replace_autoresp_config(
    uow: UnitOfWork, org: Organization, profile_id: str, config_id: str, body: AutorespConfigBody
) -> RowMapping:
    """PUT: every field is replaced; an omitted `resp_text` becomes null."""
    await require_profile(uow, org.id, profile_id)
    await _require_autoresp(uow, profile_id, config_id)
    await repo.update_autoresp(uow, config_id, {**_autoresp_values(body), "updated_at": _now()})
    return await _require_autoresp(uow, profile_id, config_id)


async def delete_autoresp_config(
    uow: UnitOfWork, org: Organization, profile_id: str, config_id: str
) -> None:
    await require_profile(uow, org.id, profile_id)
    await _require_autoresp(uow, profile_id, config_id)
    await repo.delete_autoresp(uow, config_id)
