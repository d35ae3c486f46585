"""The objects the API answers with, as typed dictionaries for the OpenAPI document.

The renderers in each feature's `schemas.py` build these objects; the types here describe them
(a field that may be left out is `NotRequired`, one that may be null says `| None`), and
`tests/integration/test_api_docs.py` checks real answers against them. `ROUTE_MODELS` says which
object each route answers with; `kit.apidocs` puts it in the document.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, NotRequired

from pydantic import WithJsonSchema
from typing_extensions import TypedDict

DateTime = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
Amount = Annotated[str, WithJsonSchema({"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"})]


class Money(TypedDict):
    amount: Amount
    currency: str


class CostBreakdown(TypedDict):
    carrier_fee: Money
    rate: Money


class Party(TypedDict):
    phone_number: str
    carrier: str
    line_type: str
    status: NotRequired[str]


class MessageError(TypedDict):
    code: str
    title: str
    detail: NotRequired[str]


_Sender = TypedDict("_Sender", {"from": Party})  # `from` is a keyword


class Message(_Sender):
    """An outbound (`OutboundMessagePayload`) or inbound (`InboundMessagePayload`) message."""

    record_type: Literal["message"]
    direction: Literal["outbound", "inbound"]
    id: str
    type: str
    messaging_profile_id: str | None
    organization_id: str
    to: list[Party] | str
    cc: list[Any]
    text: str
    subject: str | None
    media: list[dict[str, Any]]
    webhook_url: str | None
    webhook_failover_url: str | None
    encoding: str
    parts: int
    num_chars: int
    tags: list[str]
    cost: Money | None
    cost_breakdown: CostBreakdown | None
    tcr_campaign_id: str | None
    tcr_campaign_billable: bool
    tcr_campaign_registered: str | None
    received_at: DateTime
    sent_at: NotRequired[DateTime]
    completed_at: NotRequired[DateTime]
    valid_until: DateTime | None
    wait_seconds: NotRequired[float | None]
    errors: list[MessageError]
    autoresponse_type: NotRequired[str | None]


class NumberPoolSettings(TypedDict):
    long_code_weight: float
    toll_free_weight: float
    skip_unhealthy: bool
    sticky_sender: NotRequired[bool]
    geomatch: NotRequired[bool]


class MessagingProfile(TypedDict):
    record_type: Literal["messaging_profile"]
    id: str
    name: str
    enabled: bool
    webhook_url: str | None
    webhook_failover_url: str | None
    webhook_api_version: str
    whitelisted_destinations: list[str]
    alpha_sender: str | None
    daily_spend_limit: Amount
    daily_spend_limit_enabled: bool
    mms_fall_back_to_sms: bool
    mms_transcoding: bool
    mobile_only: bool
    smart_encoding: bool
    number_pool_settings: NumberPoolSettings | None
    url_shortener_settings: dict[str, Any] | None
    redaction_enabled: bool
    redaction_level: int
    v1_secret: str
    organization_id: str
    created_at: DateTime
    updated_at: DateTime


class AutorespConfig(TypedDict):
    id: str
    op: Literal["start", "stop", "info"]
    keywords: list[str]
    country_code: str
    resp_text: str
    created_at: DateTime
    updated_at: DateTime


class FeatureSet(TypedDict):
    domestic_two_way: bool
    international_inbound: bool
    international_outbound: bool


class NumberHealth(TypedDict):
    inbound_outbound_ratio: float
    message_count: int
    spam_ratio: float
    success_ratio: float


class PhoneNumberWithMessagingSettings(TypedDict):
    record_type: str
    id: str
    phone_number: str
    country_code: str
    type: str
    messaging_profile_id: str | None
    messaging_product: str
    eligible_messaging_products: list[str]
    traffic_type: str
    features: dict[str, FeatureSet | None]
    health: NumberHealth
    tags: list[str]
    organization_id: str
    created_at: DateTime
    updated_at: DateTime


class MobilePhoneNumberWithMessagingSettings(TypedDict):
    record_type: str
    id: str
    phone_number: str
    country_code: str
    type: Literal["longcode"]
    messaging_profile_id: str | None
    messaging_product: str
    traffic_type: str
    features: dict[str, FeatureSet | None]
    tags: list[str]
    organization_id: str
    created_at: DateTime
    updated_at: DateTime


class PhoneNumberDetailed(TypedDict):
    """`NumbersPhoneNumberDetailed` (the voice fields are null or off here)."""

    record_type: Literal["phone_number"]
    id: str
    phone_number: str
    country_iso_alpha2: str
    phone_number_type: str
    status: str
    tags: list[str]
    created_at: DateTime
    updated_at: DateTime
    purchased_at: DateTime
    deletion_lock_enabled: bool
    messaging_profile_id: str | None
    messaging_profile_name: str | None


class NumberOrder(TypedDict):
    record_type: Literal["number_order"]
    id: str
    status: str
    phone_numbers: list[dict[str, Any]]
    phone_numbers_count: int
    messaging_profile_id: str | None
    customer_reference: str | None
    requirements_met: bool
    created_at: DateTime
    updated_at: DateTime


class ShortCode(TypedDict):
    record_type: Literal["short_code"]
    id: str
    short_code: str
    country_code: str
    messaging_profile_id: str | None
    tags: list[str]
    created_at: DateTime
    updated_at: DateTime


class AlphanumericSenderId(TypedDict):
    record_type: Literal["alphanumeric_sender_id"]
    id: str
    alphanumeric_sender_id: str
    messaging_profile_id: str
    organization_id: str
    us_long_code_fallback: str | None


class BulkUpdate(TypedDict):
    record_type: Literal["messaging_numbers_bulk_update"]
    order_id: str
    success: list[str]
    pending: list[str]
    failed: list[str]


_OptoutPair = TypedDict("_OptoutPair", {"from": str, "to": str})


class Optout(_OptoutPair):
    messaging_profile_id: str | None
    keyword: str | None
    created_at: DateTime


class WebhookDelivery(TypedDict):
    id: str
    record_type: str
    status: str | None
    webhook: dict[str, Any]
    attempts: list[dict[str, Any]]


class UrlDomain(TypedDict):
    id: str
    record_type: str
    url_domain: str
    use_case: str


class ProfileMetricsOutbound(TypedDict):
    sent: int
    delivered: int
    failed: int
    error_ratio: float


class ProfileMetrics(TypedDict):
    """`MessagingProfileHighLevelMetrics`, with the failures and spend."""

    record_type: Literal["messaging_profile_metrics"]
    messaging_profile_id: str
    phone_numbers: int
    outbound: ProfileMetricsOutbound
    inbound: dict[str, int]
    spend: Money


class ProfileDetailedMetrics(TypedDict):
    """`MessagingProfileDetailedMetrics`: the overview and counts per message type and bucket."""

    overview: ProfileMetrics
    detailed: list[dict[str, Any]]


class LinkClick(TypedDict):
    record_type: Literal["link_click"]
    id: str
    message_id: str | None
    to: str
    url: str
    short_url: str
    time_clicked: DateTime
    user_agent: str | None
    ip: str | None
    is_bot: bool


class ShortLink(TypedDict):
    record_type: Literal["short_link"]
    code: str
    short_url: str
    url: str
    message_id: str | None
    to: str
    messaging_profile_id: str | None
    send_webhooks: bool
    created_at: DateTime
    clicks: int
    bot_clicks: int
    last_clicked_at: DateTime | None


class Chaos(TypedDict):
    sending_failed: float
    delivery_failed: float
    delivery_unconfirmed: float
    expired: float
    throttled: float
    extra_latency: float


Kind = Literal["one", "page", "list", "bare"]

# (method, path pattern, object, how it is wrapped): `one` is `{"data": obj}`, `page` a page of
# them with `meta`, `list` `{"data": [obj, …]}`, `bare` the object itself.


class ConfiguredBind(TypedDict):
    key: str
    host: str
    port: int
    system_id: str
    bind_mode: str
    window: int
    messages_per_second: float | None


class ConfiguredCarrier(TypedDict):
    name: str
    kind: str
    fallback: NotRequired[str | None]
    binds: list[ConfiguredBind]


class BindState(TypedDict):
    bind: str
    carrier: str
    address: str
    system_id: str
    state: str
    holder: str | None
    lease_until: DateTime | None
    window: int
    in_flight: int
    submitted: int
    failed: int
    throttled: int
    receipts: int
    inbound: int
    last_receipt_at: DateTime | None
    last_error: str | None
    last_error_at: DateTime | None


class CarrierStatus(TypedDict):
    """`GET /admin/carriers`: the carriers and routes as configured and each SMPP bind's state."""

    default_carrier: str
    carriers: list[ConfiguredCarrier]
    routes: list[dict[str, Any]]
    binds: list[BindState]


_ROUTES: tuple[tuple[str, str, type[Any], Kind], ...] = (
    ("post", r"^/v2/messages(/[a-z_]+)?$", Message, "one"),
    ("get", r"^/v2/messages/\{message_id\}$", Message, "one"),
    ("delete", r"^/v2/messages/\{message_id\}$", Message, "bare"),
    ("get", r"^/v2/messages/group/\{message_id\}$", Message, "list"),
    ("post", r"^/simulator/inbound$", Message, "one"),
    ("get", r"^/v2/messaging_profiles$", MessagingProfile, "page"),
    (
        "post|get|patch|delete",
        r"^/v2/messaging_profiles(/\{profile_id\})?$",
        MessagingProfile,
        "one",
    ),
    ("post", r"^/v2/messaging_profiles/\{profile_id\}/actions/", MessagingProfile, "one"),
    (
        "get",
        r"^/v2/messaging_profiles/\{profile_id\}/phone_numbers$",
        PhoneNumberWithMessagingSettings,
        "page",
    ),
    ("get", r"^/v2/messaging_profiles/\{profile_id\}/short_codes$", ShortCode, "page"),
    (
        "get",
        r"^/v2/messaging_profiles/\{profile_id\}/alphanumeric_sender_ids$",
        AlphanumericSenderId,
        "page",
    ),
    (
        "get",
        r"^/v2/messaging_profiles/\{profile_id\}/autoresp_configs$",
        AutorespConfig,
        "page",
    ),
    (
        "post|get|put",
        r"^/v2/messaging_profiles/\{profile_id\}/autoresp_configs(/\{autoresp_cfg_id\})?$",
        AutorespConfig,
        "one",
    ),
    ("get", r"^/v2/messaging_profiles/\{profile_id\}/metrics$", ProfileDetailedMetrics, "one"),
    ("get", r"^/v2/messaging_profile_metrics$", ProfileMetrics, "page"),
    (
        "get",
        r"^/v2/(phone_numbers/messaging|messaging_phone_numbers)$",
        PhoneNumberWithMessagingSettings,
        "page",
    ),
    (
        "get|patch",
        r"^/v2/(phone_numbers/\{id\}/messaging|messaging_phone_numbers/\{id\})$",
        PhoneNumberWithMessagingSettings,
        "one",
    ),
    (
        "get",
        r"^/v2/mobile_phone_numbers/messaging$",
        MobilePhoneNumberWithMessagingSettings,
        "page",
    ),
    (
        "get",
        r"^/v2/mobile_phone_numbers/\{id\}/messaging$",
        MobilePhoneNumberWithMessagingSettings,
        "one",
    ),
    ("get", r"^/v2/phone_numbers$", PhoneNumberDetailed, "page"),
    ("get", r"^/v2/phone_numbers/\{id\}$", PhoneNumberDetailed, "one"),
    ("get", r"^/v2/number_orders$", NumberOrder, "page"),
    ("post|get|patch", r"^/v2/number_orders(/\{number_order_id\})?$", NumberOrder, "one"),
    ("get", r"^/v2/short_codes$", ShortCode, "page"),
    ("get|patch", r"^/v2/short_codes/\{id\}$", ShortCode, "one"),
    ("get", r"^/v2/alphanumeric_sender_ids$", AlphanumericSenderId, "page"),
    (
        "post|get|delete",
        r"^/v2/alphanumeric_sender_ids(/\{id\})?$",
        AlphanumericSenderId,
        "one",
    ),
    (
        "post|get",
        r"^/v2/messaging_numbers(_|/)bulk_updates(/\{order_id\})?$",
        BulkUpdate,
        "one",
    ),
    ("get", r"^/v2/messaging_optouts$", Optout, "page"),
    ("get", r"^/v2/webhook_deliveries$", WebhookDelivery, "page"),
    ("get", r"^/v2/webhook_deliveries/\{delivery_id\}$", WebhookDelivery, "one"),
    ("post", r"^/v2/webhook_deliveries/\{delivery_id\}/redeliver$", WebhookDelivery, "one"),
    ("get", r"^/analytics/link_clicks$", LinkClick, "page"),
    ("get", r"^/analytics/messages/\{message_id\}/links$", ShortLink, "list"),
    ("get", r"^/v2/messaging_url_domains$", UrlDomain, "page"),
    ("get|put", r"^/simulator/chaos$", Chaos, "one"),
    ("get", r"^/admin/carriers$", CarrierStatus, "one"),
)
ROUTE_MODELS = [(m, re.compile(p), model, kind) for m, p, model, kind in _ROUTES]


def model_for(method: str, path: str) -> tuple[type[Any], Kind] | None:
    """The object a route answers with, and how it is wrapped (None: not described here)."""
    for methods, pattern, model, kind in ROUTE_MODELS:
        if method in methods.split("|") and pattern.match(path):
            return model, kind
    return None
