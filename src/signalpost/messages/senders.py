"""Who sends a message: the sending address for the endpoint used, its profile, the destination."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy.engine import RowMapping

from signalpost.accounts.service import Organization
from signalpost.kit import phone
from signalpost.kit.db import UnitOfWork
from signalpost.messages import pool
from signalpost.messages import repository as repo
from signalpost.messages.errors import invalid_from, invalid_to, rejection

Endpoint = Literal["messages", "long_code", "short_code", "number_pool", "alphanumeric", "schedule"]
SenderKind = Literal["long_code", "toll_free", "short_code", "alphanumeric"]


@dataclass(frozen=True)
class SendRequest:
    """Every send endpoint's body, normalised."""

    endpoint: Endpoint
    to: str
    from_: str | None = None
    messaging_profile_id: str | None = None
    text: str | None = None
    subject: str | None = None
    media_urls: list[str] = field(default_factory=list)
    type: str | None = None
    encoding: str = "auto"
    auto_detect: bool = False
    use_profile_webhooks: bool = True
    webhook_url: str | None = None
    webhook_failover_url: str | None = None
    send_at: str | None = None
    group_id: str | None = None
    cc: list[dict[str, Any]] = field(default_factory=list)
    request: dict[str, Any] = field(default_factory=dict)
    # Auto-replies to inbound keywords: never blocked by the opt-out they confirm.
    bypass_optout: bool = False
    autoresponse_type: str | None = None
    # The outbound guard's verdicts on the text's blocked links, looked up at the API
    # (messages.outbound); None when not looked up.
    link_problems: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Sender:
    number: str
    kind: SenderKind
    profile: RowMapping
    rate_limit: float | None


def _kind_of_number(row: RowMapping) -> SenderKind:
    return "toll_free" if row["type"] in ("toll-free", "tollfree") else "long_code"


async def _profile_of(uow: UnitOfWork, org: Organization, profile_id: str | None) -> RowMapping:
    if not profile_id:
        raise invalid_from("The sender is not assigned to a messaging profile.")
    profile = await _profile(uow, org.id, profile_id)
    if profile is None:
        raise invalid_from("The sender's messaging profile does not exist.")
    return profile


async def _profile(uow: UnitOfWork, org_id: str, profile_id: str) -> RowMapping | None:
    return await uow.memo(
        ("profile", org_id, profile_id), lambda: repo.profile(uow, org_id, profile_id)
    )


async def resolve_sender(uow: UnitOfWork, org: Organization, req: SendRequest) -> Sender:
    """Find and check the sending address for the endpoint used (40305, 40306)."""
    src = (req.from_ or "").strip(" ")
    if req.endpoint == "number_pool":
        return await _pool_sender(uow, org, req)
    if req.endpoint == "alphanumeric" or (
        req.endpoint in ("messages", "schedule") and src and phone.ALPHANUMERIC.match(src)
    ):
        return await _alphanumeric_sender(uow, org, req, src)

    if not src:
        raise rejection(
            "10004",
            "Missing required parameter",
            "'from' is required for this endpoint.",
            "/from",
            422,
        )
    if phone.SHORT_CODE.match(src):
        if req.endpoint == "long_code":
            raise invalid_from(f"{src} is a short code; send it with /messages/short_code.")
        sc = await uow.memo(
            ("short_code", org.id, src), lambda: repo.owned_short_code(uow, org.id, src)
        )
        if sc is None:
            raise invalid_from(f"{src} is not a short code of this account.")
        return Sender(
            src,
            "short_code",
            await _profile_of(uow, org, sc["messaging_profile_id"]),
            sc["rate_limit"],
        )
    if not phone.is_e164(src):
        raise invalid_from(f"'{src}' is not a +E.164 number, short code or alphanumeric sender ID.")
    number = await uow.memo(
        ("phone_number", org.id, src), lambda: repo.owned_phone_number(uow, org.id, src)
    )
    if number is None:
        raise invalid_from(f"{src} is not a phone number of this account.")
    if req.endpoint == "short_code":
        raise invalid_from(
            f"{src} is not a short code; send it with /messages or /messages/long_code."
        )
    profile = await _profile_of(uow, org, number["messaging_profile_id"])
    return Sender(src, _kind_of_number(number), profile, number["rate_limit"])


async def _alphanumeric_sender(
    uow: UnitOfWork, org: Organization, req: SendRequest, src: str
) -> Sender:
    """An alphanumeric sender id registered on the request's messaging profile (40305, 40306)."""
    if not src or not phone.ALPHANUMERIC.match(src):
        raise invalid_from(
            "'from' must be an alphanumeric sender ID of 1-11 letters, digits or spaces."
        )
    if not req.messaging_profile_id:
        raise rejection(
            "10004",
            "Missing required parameter",
            "'messaging_profile_id' is required to send with an alphanumeric sender ID.",
            "/messaging_profile_id",
            422,
        )
    profile = await _profile(uow, org.id, req.messaging_profile_id)
    if profile is None:
        raise rejection(
            "40305",
            "Invalid 'from' address",
            "The messaging profile does not exist.",
            "/messaging_profile_id",
        )
    # The profile's own `alpha_sender` is registered by being set (no separate sender ID).
    own = profile["alpha_sender"] == src
    if not own and await repo.alphanumeric_sender(uow, org.id, profile["id"], src) is None:
        raise rejection(
            "40306",
            "Alphanumeric sender ID not configured",
            f"'{src}' is not a registered alphanumeric sender ID of this messaging profile.",
            "/from",
        )
    return Sender(src, "alphanumeric", profile, None)


async def _pool_sender(uow: UnitOfWork, org: Organization, req: SendRequest) -> Sender:
    profile = await repo.profile(uow, org.id, req.messaging_profile_id or "")
    if profile is None:
        raise rejection(
            "40321",
            "No usable numbers in the number pool",
            f"Messaging profile {req.messaging_profile_id} does not exist.",
            "/messaging_profile_id",
        )
    validate_to_format(req.to.strip(" "))
    number = await pool.choose_sender(uow, profile, req.to.strip(" "))
    return Sender(number["phone_number"], _kind_of_number(number), profile, number["rate_limit"])


def check_destination(to: str, profile: RowMapping, pointer: str = "/to") -> str:
    """Validate `to` (40310) and the profile's allowed destinations (40309); returns the country."""
    to = to.strip(" ")  # spaces are forgiven; a newline or tab is not
    if phone.SHORT_CODE.match(to):
        country = "US"
    else:
        info = phone.parse(to)
        if info is None:
            raise invalid_to(f"'{to}' is not a valid +E.164 phone number or short code.", pointer)
        country = info.country_code
    allowed = profile["whitelisted_destinations"] or []
    if "*" not in allowed and country not in allowed:
        raise rejection(
            "40309",
            "Invalid destination region",
            f"Destination country {country} is not in the messaging profile's whitelisted_destinations.",
            pointer,
        )
    return country


def validate_to_format(to: str, pointer: str = "/to") -> None:
    if not (phone.SHORT_CODE.match(to) or phone.parse(to)):
        raise invalid_to(f"'{to}' is not a valid +E.164 phone number or short code.", pointer)
