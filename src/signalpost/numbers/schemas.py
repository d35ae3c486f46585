"""Wire models of the number inventory and their renderers (contract §4.7, §4.8, §7.2–7.6)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError
from sqlalchemy.engine import RowMapping

from signalpost.kit.clock import iso
from signalpost.kit.phone import ALPHANUMERIC

# A stored row, or a plain mapping with the same keys.
Row = RowMapping | Mapping[str, Any]

DEFAULT_PRODUCT = "P2P"
ELIGIBLE_PRODUCTS = ("A2P", "P2P")
MAX_TAGS = 100


# What a number can do with messaging. Every number sends and receives SMS everywhere; MMS is
# domestic-only and offered in North America.
_FULL = {"domestic_two_way": True, "international_inbound": True, "international_outbound": True}
_DOMESTIC = {
    "domestic_two_way": True,
    "international_inbound": False,
    "international_outbound": False,
}
MMS_COUNTRIES = ("US", "CA")

DEFAULT_HEALTH: dict[str, Any] = {
    "inbound_outbound_ratio": 0.0,
    "message_count": 0,
    "spam_ratio": 0.0,
    "success_ratio": 1.0,
}


def _error(message: str) -> PydanticCustomError:
    return PydanticCustomError("value_error", message)


class _Request(BaseModel):
    # Strict: a JSON number is not a string, a string is not a boolean.
    model_config = ConfigDict(extra="ignore", strict=True)


class _Tagged(_Request):
    tags: list[str] | None = Field(default=None, max_length=MAX_TAGS)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            for tag in value:
                if not tag.strip() or len(tag) > 255:
                    raise _error("Tags must be non-empty strings of at most 255 characters.")
        return value


# --- requests ---------------------------------------------------------------------------------


class OrderPhoneNumber(_Request):
    phone_number: str
    bundle_id: str | None = Field(default=None, max_length=64)
    requirement_group_id: str | None = Field(default=None, max_length=64)


class NumberOrderCreate(_Request):
    """`POST /number_orders`: numbers are checked one by one in the service (E.164, available)."""

    phone_numbers: list[OrderPhoneNumber] = Field(min_length=1, max_length=1000)
    messaging_profile_id: str | None = None
    connection_id: str | None = Field(default=None, max_length=64)
    billing_group_id: str | None = Field(default=None, max_length=64)
    customer_reference: str | None = Field(default=None, max_length=255)


class NumberOrderUpdate(_Request):
    """`PATCH /number_orders/{id}`: regulatory requirements are accepted and ignored (met)."""

    customer_reference: str | None = Field(default=None, max_length=255)


class MessagingSettingsUpdate(_Tagged):
    """`PATCH /phone_numbers/{id}/messaging`: omitted or null fields keep their value."""

    messaging_profile_id: str | None = None  # "" unassigns
    messaging_product: str | None = None


class ShortCodeUpdate(_Tagged):
    """`PATCH /short_codes/{id}`: `messaging_profile_id` is required; "" or null unassigns."""

    messaging_profile_id: str | None


class AlphanumericSenderIdCreate(_Request):
    """`POST /alphanumeric_sender_ids`."""

    alphanumeric_sender_id: str
    messaging_profile_id: str
    us_long_code_fallback: str | None = None

    @field_validator("alphanumeric_sender_id")
    @classmethod
    def _sender(cls, value: str) -> str:
        if not ALPHANUMERIC.match(value):
            raise _error(
                "Must be 1 to 11 characters (letters, digits, spaces) with at least one letter."
            )
        return value


class BulkUpdateCreate(_Request):
    """`POST /messaging_numbers_bulk_updates`."""

    messaging_profile_id: str  # "" unassigns every number
    numbers: list[str] = Field(min_length=1, max_length=10_000)
    assign_only: bool = False


# --- renderers --------------------------------------------------------------------------------


def _features(row: Row) -> dict[str, Any]:
    return {
        "sms": dict(_FULL),
        "mms": dict(_DOMESTIC) if row["country_code"] in MMS_COUNTRIES else None,
    }


def phone_number_out(row: Row, health: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A `phone_numbers` row as `PhoneNumberWithMessagingSettings` (contract §4.7).

    `health` is what `service.number_health` computed; without it the neutral defaults are shown.
    """
    return {
        "record_type": "messaging_phone_number",
        "id": row["id"],
        "phone_number": row["phone_number"],
        "country_code": row["country_code"],
        "type": row["type"],
        "messaging_profile_id": row["messaging_profile_id"],
        "messaging_product": row["messaging_product"],
        "eligible_messaging_products": list(ELIGIBLE_PRODUCTS),
        "traffic_type": row["traffic_type"],
        "features": _features(row),
        "health": dict(health) if health is not None else dict(DEFAULT_HEALTH),
        "tags": list(row["tags"] or []),
        "organization_id": row["organization_id"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def mobile_phone_number_out(row: Row) -> dict[str, Any]:
    """A mobile number as `MobilePhoneNumberWithMessagingSettings` (contract §4.7, mobile)."""
    return {
        "record_type": "messaging_phone_number",
        "id": row["id"],
        "phone_number": row["phone_number"],
        "country_code": row["country_code"],
        "type": "longcode",
        "messaging_profile_id": row["messaging_profile_id"],
        "messaging_product": row["messaging_product"],
        "traffic_type": row["traffic_type"],
        "features": {"sms": dict(_FULL)},
        "tags": list(row["tags"] or []),
        "organization_id": row["organization_id"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def order_number_out(item: Mapping[str, Any]) -> dict[str, Any]:
    """One number of an order as stored in `number_orders.phone_numbers`."""
    return {
        "record_type": "number_order_phone_number",
        "id": item["id"],
        "phone_number": item["phone_number"],
        "phone_number_type": item["phone_number_type"],
        "country_code": item["country_code"],
        "country_iso_alpha2": item["country_code"],
        "bundle_id": item.get("bundle_id"),
        "regulatory_requirements": [],
        "requirements_met": True,
        "requirements_status": "approved",
        "status": item["status"],
    }


def number_order_out(row: Row) -> dict[str, Any]:
    """A `number_orders` row as `NumberOrderWithPhoneNumbers`."""
    numbers = list(row["phone_numbers"] or [])
    return {
        "record_type": "number_order",
        "id": row["id"],
        "status": row["status"],
        "phone_numbers": [order_number_out(n) for n in numbers],
        "phone_numbers_count": len(numbers),
        "messaging_profile_id": row["messaging_profile_id"],
        "connection_id": row["connection_id"],
        "billing_group_id": row["billing_group_id"],
        "customer_reference": row["customer_reference"],
        "requirements_met": True,
        "sub_number_orders_ids": [],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def short_code_out(row: Row) -> dict[str, Any]:
    """A `short_codes` row as `ShortCode` (contract §4.8)."""
    return {
        "record_type": "short_code",
        "id": row["id"],
        "short_code": row["short_code"],
        "country_code": row["country_code"],
        "messaging_profile_id": row["messaging_profile_id"],
        "tags": list(row["tags"] or []),
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def alphanumeric_sender_id_out(row: Row) -> dict[str, Any]:
    """An `alphanumeric_sender_ids` row as `AlphanumericSenderID` (contract §4.8)."""
    return {
        "record_type": "alphanumeric_sender_id",
        "id": row["id"],
        "alphanumeric_sender_id": row["alphanumeric_sender_id"],
        "messaging_profile_id": row["messaging_profile_id"],
        "organization_id": row["organization_id"],
        "us_long_code_fallback": row["us_long_code_fallback"],
    }


def bulk_update_out(row: Row) -> dict[str, Any]:
    """A `bulk_updates` row as `BulkMessagingSettingsUpdatePhoneNumbers` (contract §4.8)."""
    return {
        "record_type": "messaging_numbers_bulk_update",
        "order_id": row["order_id"],
        "success": list(row["success"] or []),
        "pending": list(row["pending"] or []),
        "failed": list(row["failed"] or []),
    }
