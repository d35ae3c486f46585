"""`GET /phone_numbers`: the organization's numbers as Telnyx's `NumbersPhoneNumberDetailed`, with
their messaging fields, and the list's filters and sort orders.

The numbers are voice-less here: no connection, billing group, emergency address or voice
settings, so a filter on one of those matches nothing (or, for the value `null`, everything).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query
from sqlalchemy.engine import RowMapping

from signalpost.kit.clock import iso
from signalpost.kit.errors import bad_parameter

STATUSES = (
    "purchase-pending",
    "purchase-failed",
    "port-pending",
    "active",
    "deleted",
    "port-failed",
    "emergency-only",
    "ported-out",
    "port-out-pending",
)
NUMBER_TYPES = ("local", "national", "toll_free", "mobile", "shared_cost")
SORTS = ("purchased_at", "phone_number", "connection_name", "usage_payment_method")


@dataclass(frozen=True)
class DetailedFilter:
    tag: str | None = None
    without_tags: bool = False
    digits: str | None = None  # filter[phone_number]: digits the number contains
    status: str | None = None
    countries: tuple[str, ...] = ()
    number_type: str | None = None
    source: str | None = None
    customer_reference: str | None = None
    # A filter on a voice or billing attribute this server does not keep: nothing matches.
    impossible: bool = False
    sort: str | None = None
    descending: bool = False


def _choice(parameter: str, raw: str | None, allowed: Sequence[str]) -> str | None:
    if raw is None or raw == "":
        return None
    if raw not in allowed:
        raise bad_parameter(parameter, f"{parameter} must be one of: {', '.join(allowed)}.")
    return raw


def _absent(raw: str | None) -> bool:
    """A filter on an attribute no number has: only `null` (or nothing) matches."""
    return raw is not None and raw != "" and raw != "null"


def detailed_filter(
    tag: Annotated[str | None, Query(alias="filter[tag]")] = None,
    without_tags: Annotated[str | None, Query(alias="filter[without_tags]")] = None,
    phone_number: Annotated[str | None, Query(alias="filter[phone_number]")] = None,
    status: Annotated[str | None, Query(alias="filter[status]")] = None,
    country: Annotated[str | None, Query(alias="filter[country_iso_alpha2]")] = None,
    number_type: Annotated[str | None, Query(alias="filter[number_type][eq]")] = None,
    source: Annotated[str | None, Query(alias="filter[source]")] = None,
    customer_reference: Annotated[str | None, Query(alias="filter[customer_reference]")] = None,
    connection_id: Annotated[str | None, Query(alias="filter[connection_id]")] = None,
    billing_group_id: Annotated[str | None, Query(alias="filter[billing_group_id]")] = None,
    emergency_address_id: Annotated[str | None, Query(alias="filter[emergency_address_id]")] = None,
    voice_connection: Annotated[
        str | None, Query(alias="filter[voice.connection_name][eq]")
    ] = None,
    voice_contains: Annotated[
        str | None, Query(alias="filter[voice.connection_name][contains]")
    ] = None,
    voice_starts: Annotated[
        str | None, Query(alias="filter[voice.connection_name][starts_with]")
    ] = None,
    voice_ends: Annotated[
        str | None, Query(alias="filter[voice.connection_name][ends_with]")
    ] = None,
    voice_payment: Annotated[str | None, Query(alias="filter[voice.usage_payment_method]")] = None,
    handle_messaging_profile_error: Annotated[str | None, Query()] = None,
    sort: Annotated[str | None, Query()] = None,
) -> DetailedFilter:
    """The list's filters (the SDK's deepObject `filter`), validated: 400 (10015) otherwise."""
    _choice("handle_messaging_profile_error", handle_messaging_profile_error, ("true", "false"))
    digits = None
    if phone_number:
        digits = phone_number.strip().removeprefix("+")
    descending = bool(sort and sort.startswith("-"))
    return DetailedFilter(
        tag=tag or None,
        without_tags=_choice("filter[without_tags]", without_tags, ("true", "false")) == "true",
        digits=digits,
        status=_choice("filter[status]", status, STATUSES),
        countries=tuple(c.strip().upper() for c in (country or "").split(",") if c.strip()),
        number_type=_choice("filter[number_type][eq]", number_type, NUMBER_TYPES),
        source=_choice("filter[source]", source, ("ported", "purchased")),
        customer_reference=customer_reference or None,
        impossible=any(
            _absent(v)
            for v in (connection_id, billing_group_id, emergency_address_id, voice_connection)
        )
        or any((voice_contains, voice_starts, voice_ends, voice_payment)),
        sort=_choice("sort", sort.removeprefix("-") if sort else None, SORTS),
        descending=descending,
    )


def number_type(row: RowMapping) -> str:
    if row["type"] == "toll-free":
        return "toll_free"
    return "mobile" if row["mobile"] else "local"


def phone_number_detailed_out(row: RowMapping) -> dict[str, Any]:
    """A number as `NumbersPhoneNumberDetailed`, with its messaging profile."""
    return {
        "record_type": "phone_number",
        "id": row["id"],
        "phone_number": row["phone_number"],
        "country_iso_alpha2": row["country_code"],
        "phone_number_type": number_type(row),
        "status": "active",
        "tags": list(row["tags"] or []),
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "purchased_at": iso(row["created_at"]),
        "activated_at": iso(row["created_at"]),
        "source_type": "number_order",
        "deletion_lock_enabled": False,
        "external_pin": None,
        "messaging_profile_id": row["messaging_profile_id"],
        "messaging_profile_name": row["messaging_profile_name"],
        "messaging_campaign_id": None,
        "connection_id": None,
        "connection_name": None,
        "billing_group_id": None,
        "customer_reference": None,
        "emergency_enabled": False,
        "emergency_address_id": None,
        "emergency_status": "disabled",
        "call_forwarding_enabled": False,
        "call_recording_enabled": False,
        "caller_id_name_enabled": False,
        "cnam_listing_enabled": False,
        "t38_fax_gateway_enabled": False,
        "hd_voice_enabled": False,
        "inbound_call_screening": "disabled",
    }
