"""Wire models of messaging profiles and auto-response configs, and their renderers (contract §4.6, §4.8, §8)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, cast

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError
from sqlalchemy.engine import RowMapping

from signalpost.kit.clock import iso
from signalpost.kit.urls import MAX_URL_LENGTH, check_webhook_urls
from signalpost.optouts.keywords import DEFAULT_TEXTS, Op

COUNTRY_RE = re.compile(r"^[A-Z]{2}\Z")
ALPHA_SENDER_RE = re.compile(r"^[A-Za-z0-9 ]{1,11}\Z")
SPEND_LIMIT_RE = re.compile(r"^[0-9]+(?:\.[0-9]+)?\Z")

WebhookApiVersion = Literal["1", "2", "2010-04-01"]
AutorespOp = Literal["start", "stop", "info"]


def _error(message: str) -> PydanticCustomError:
    return PydanticCustomError("value_error", message)


def _country(value: str) -> str:
    if value != "*" and not COUNTRY_RE.match(value):
        raise _error("Must be an ISO 3166-1 alpha-2 country code such as 'US', or '*'.")
    return value


def _keyword(value: str) -> str:
    if not value.strip():
        raise _error("Keywords must be non-empty strings.")
    return value


class _Request(BaseModel):
    # Strict: a JSON string is not a boolean and a number is not a money string.
    model_config = ConfigDict(extra="ignore", strict=True)


class NumberPoolSettings(_Request):
    long_code_weight: float = Field(ge=0, allow_inf_nan=False)
    toll_free_weight: float = Field(ge=0, allow_inf_nan=False)
    skip_unhealthy: bool
    sticky_sender: bool = False
    geomatch: bool = False


class UrlShortenerSettings(_Request):
    domain: str = Field(min_length=1, max_length=255)
    prefix: str = Field(default="", max_length=64)
    replace_blacklist_only: bool = False
    send_webhooks: bool = False


class ProfileFeatures(BaseModel):
    """Feature flags; keys this server does not know are kept as sent."""

    model_config = ConfigDict(extra="allow", strict=True)

    ai_opt_out_detection_enabled: bool | None = None


Destination = Annotated[str, AfterValidator(_country)]


class _ProfileFields(_Request):
    """Fields shared by create and update; all optional here."""

    enabled: bool | None = None
    webhook_url: str | None = Field(default=None, max_length=MAX_URL_LENGTH)
    webhook_failover_url: str | None = Field(default=None, max_length=MAX_URL_LENGTH)
    webhook_api_version: WebhookApiVersion | None = None
    alpha_sender: str | None = None
    daily_spend_limit: str | None = None
    daily_spend_limit_enabled: bool | None = None
    mms_fall_back_to_sms: bool | None = None
    mms_transcoding: bool | None = None
    mobile_only: bool | None = None
    smart_encoding: bool | None = None
    number_pool_settings: NumberPoolSettings | None = None
    url_shortener_settings: UrlShortenerSettings | None = None
    features: ProfileFeatures | None = None
    redaction_enabled: bool | None = None
    redaction_level: int | None = None
    ai_assistant_id: str | None = Field(default=None, max_length=64)
    resource_group_id: str | None = Field(default=None, max_length=64)
    health_webhook_url: str | None = Field(default=None, max_length=MAX_URL_LENGTH)

    @field_validator("whitelisted_destinations", check_fields=False)
    @classmethod
    def _star_alone(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and "*" in value and len(value) > 1:
            raise _error("'*' allows every destination and cannot be combined with country codes.")
        return value

    @field_validator("alpha_sender")
    @classmethod
    def _alpha_sender(cls, value: str | None) -> str | None:
        if value is not None and not ALPHA_SENDER_RE.match(value):
            raise _error("Must be 1 to 11 characters: letters, digits and spaces.")
        return value

    @field_validator("daily_spend_limit")
    @classmethod
    def _spend_limit(cls, value: str | None) -> str | None:
        if value is not None and not SPEND_LIMIT_RE.match(value):
            raise _error("Must be a decimal amount in USD as a string, such as '100.00'.")
        return value

    @field_validator("redaction_level")
    @classmethod
    def _redaction_level(cls, value: int | None) -> int | None:
        if value is not None and value not in (1, 2):
            raise _error("Must be 1 or 2.")
        return value

    @field_validator(
        "enabled",
        "webhook_api_version",
        "daily_spend_limit",
        "daily_spend_limit_enabled",
        "mms_fall_back_to_sms",
        "mms_transcoding",
        "mobile_only",
        "smart_encoding",
        "redaction_enabled",
        "redaction_level",
    )
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Only reached when the field was sent: an omitted field keeps its default.
        if value is None:
            raise _error("Must not be null.")
        return value

    def given(self) -> dict[str, Any]:
        """The fields present in the request body, as they will be stored."""
        out: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if isinstance(value, ProfileFeatures):
                value = value.model_dump(exclude_unset=True)
            elif isinstance(value, BaseModel):
                value = value.model_dump()
            out[name] = value
        if "features" in out and out["features"] is None:
            out["features"] = {}
        return out


class ProfileCreate(_ProfileFields):
    """`POST /messaging_profiles`."""

    name: str = Field(min_length=1, max_length=255)
    whitelisted_destinations: list[Destination]


class ProfileUpdate(_ProfileFields):
    """`PATCH /messaging_profiles/{id}`: only the fields sent change."""

    name: str | None = Field(default=None, min_length=1, max_length=255)
    whitelisted_destinations: list[Destination] | None = None
    v1_secret: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("name", "whitelisted_destinations", "v1_secret")
    @classmethod
    def _required_not_null(cls, value: object) -> object:
        if value is None:
            raise _error("Must not be null.")
        return value


CREATE_DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "webhook_url": "",
    "webhook_failover_url": "",
    "webhook_api_version": "2",
    "alpha_sender": None,
    "daily_spend_limit": None,
    "daily_spend_limit_enabled": False,
    "mms_fall_back_to_sms": False,
    "mms_transcoding": False,
    "mobile_only": False,
    "smart_encoding": False,
    "number_pool_settings": None,
    "url_shortener_settings": None,
    "features": {},
    "redaction_enabled": False,
    "redaction_level": 2,
    "ai_assistant_id": None,
    "resource_group_id": None,
    "health_webhook_url": None,
}

URL_FIELDS = ("webhook_url", "webhook_failover_url", "health_webhook_url")


def check_urls(values: dict[str, Any]) -> None:
    """Webhook URLs are absolute http(s) URLs; `""` and null mean "none" (kit.urls)."""
    check_webhook_urls(values, URL_FIELDS)


class AutorespConfigBody(_Request):
    """Create and full-replace (PUT) body of an auto-response config."""

    op: AutorespOp
    keywords: list[Annotated[str, Field(max_length=64), AfterValidator(_keyword)]] = Field(
        min_length=1
    )
    country_code: Annotated[str, AfterValidator(_country)]
    resp_text: str | None = Field(default=None, max_length=1600)


# --- renderers --------------------------------------------------------------------------------


def profile_out(row: RowMapping) -> dict[str, Any]:
    """The messaging profile object (`MessagingMessagingProfile`)."""
    return {
        "record_type": "messaging_profile",
        "id": row["id"],
        "name": row["name"],
        "enabled": bool(row["enabled"]),
        "webhook_url": row["webhook_url"],
        "webhook_failover_url": row["webhook_failover_url"],
        "webhook_api_version": row["webhook_api_version"],
        "whitelisted_destinations": list(row["whitelisted_destinations"] or []),
        "alpha_sender": row["alpha_sender"],
        # A string amount in the spec, never null: "0.00" while no limit was set.
        "daily_spend_limit": row["daily_spend_limit"] or NO_SPEND_LIMIT,
        "daily_spend_limit_enabled": bool(row["daily_spend_limit_enabled"]),
        "mms_fall_back_to_sms": bool(row["mms_fall_back_to_sms"]),
        "mms_transcoding": bool(row["mms_transcoding"]),
        "mobile_only": bool(row["mobile_only"]),
        "smart_encoding": bool(row["smart_encoding"]),
        "number_pool_settings": row["number_pool_settings"],
        "url_shortener_settings": row["url_shortener_settings"],
        "redaction_enabled": bool(row["redaction_enabled"]),
        "redaction_level": row["redaction_level"],
        "features": dict(row["features"] or {}),
        "ai_assistant_id": row["ai_assistant_id"],
        "resource_group_id": row["resource_group_id"],
        "health_webhook_url": row["health_webhook_url"],
        "v1_secret": row["v1_secret"],
        "organization_id": row["organization_id"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


NO_SPEND_LIMIT = "0.00"


def effective_resp_text(op: str, resp_text: str | None) -> str:
    """The text a config replies with: its own, or the default text of its `op` (the spec's
    `resp_text` is required, so a config created without one shows the default)."""
    if resp_text and resp_text.strip():
        return resp_text
    return DEFAULT_TEXTS[cast(Op, op)]


def autoresp_config_out(row: RowMapping) -> dict[str, Any]:
    """The auto-response config object (`AutoRespConfig`)."""
    return {
        "id": row["id"],
        "op": row["op"],
        "keywords": list(row["keywords"]),
        "country_code": row["country_code"],
        "resp_text": effective_resp_text(row["op"], row["resp_text"]),
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }
