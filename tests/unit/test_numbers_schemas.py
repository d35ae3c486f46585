"""Number inventory wire shapes against the SDK's own models, request validation, and the small
pure helpers (path ids, query filters, health ratios). No I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from telnyx._models import validate_type
from telnyx.types import (
    AlphanumericSenderIDRetrieveResponse,
    MessagingNumbersBulkUpdateRetrieveResponse,
    NumberOrderListResponse,
    NumberOrderRetrieveResponse,
    ShortCodeRetrieveResponse,
)
from telnyx.types.mobile_phone_numbers import MessagingRetrieveResponse as MobileRetrieveResponse
from telnyx.types.phone_numbers import MessagingRetrieveResponse

from signalpost.kit.errors import ApiError
from signalpost.numbers.api import number_filter, number_sort, order_filter
from signalpost.numbers.repository import TrafficCounts
from signalpost.numbers.schemas import (
    AlphanumericSenderIdCreate,
    BulkUpdateCreate,
    MessagingSettingsUpdate,
    alphanumeric_sender_id_out,
    bulk_update_out,
    mobile_phone_number_out,
    number_order_out,
    phone_number_out,
    short_code_out,
)
from signalpost.numbers.service import _health, number_key

NOW = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)

NUMBER: dict[str, Any] = {
    "id": "1293384261075731499",
    "organization_id": "org-1",
    "phone_number": "+13125550100",
    "country_code": "US",
    "type": "long-code",
    "mobile": False,
    "messaging_profile_id": None,
    "messaging_product": "P2P",
    "traffic_type": "P2P",
    "tags": ["a"],
    "whatsapp_enabled": False,
    "rate_limit": None,
    "created_at": NOW,
    "updated_at": NOW,
}


def test_phone_number_validates_as_the_sdk_model() -> None:
    wire = phone_number_out(NUMBER)
    got = validate_type(type_=MessagingRetrieveResponse, value={"data": wire}).data
    assert got is not None
    assert got.type == "long-code"
    assert got.created_at == NOW.replace(microsecond=123000)
    assert got.health is not None and got.health.success_ratio == 1.0
    assert got.features is not None and got.features.mms is not None
    assert wire["created_at"] == "2024-05-01T12:30:15.123Z"


def test_health_is_passed_through_and_mms_is_north_american() -> None:
    health = {
        "inbound_outbound_ratio": 0.5,
        "message_count": 3,
        "spam_ratio": 0.0,
        "success_ratio": 0.5,
    }
    wire = phone_number_out({**NUMBER, "country_code": "DE"}, health)
    assert wire["health"] == health
    assert wire["features"]["mms"] is None
    validate_type(type_=MessagingRetrieveResponse, value={"data": wire})


def test_mobile_variant_validates() -> None:
    wire = mobile_phone_number_out({**NUMBER, "mobile": True})
    got = validate_type(type_=MobileRetrieveResponse, value={"data": wire}).data
    assert got is not None and got.type == "longcode"
    assert "health" not in wire and "eligible_messaging_products" not in wire


def test_number_order_validates_for_retrieve_and_list() -> None:
    row = {
        "id": "5e1c2c50-0000-4000-8000-000000000001",
        "status": "success",
        "messaging_profile_id": None,
        "connection_id": None,
        "billing_group_id": None,
        "customer_reference": "ref",
        "phone_numbers": [
            {
                "id": "1",
                "phone_number": "+18335550100",
                "phone_number_type": "toll_free",
                "country_code": "US",
                "status": "success",
            }
        ],
        "created_at": NOW,
        "updated_at": NOW,
    }
    wire = number_order_out(row)  # type: ignore[arg-type]
    got = validate_type(type_=NumberOrderRetrieveResponse, value={"data": wire}).data
    assert got is not None and got.phone_numbers_count == 1 and got.status == "success"
    assert got.phone_numbers and got.phone_numbers[0].phone_number_type == "toll_free"
    listed = validate_type(type_=NumberOrderListResponse, value=wire)
    assert listed.phone_numbers and listed.phone_numbers[0].phone_number == "+18335550100"


def test_short_code_alphanumeric_and_bulk_validate() -> None:
    short = {
        "id": "s1",
        "short_code": "12345",
        "country_code": "US",
        "messaging_profile_id": None,
        "tags": [],
        "created_at": NOW,
        "updated_at": NOW,
    }
    validate_type(type_=ShortCodeRetrieveResponse, value={"data": short_code_out(short)})
    alpha = {
        "id": "a1",
        "alphanumeric_sender_id": "Acme",
        "messaging_profile_id": "p1",
        "organization_id": "o1",
        "us_long_code_fallback": None,
    }
    validate_type(
        type_=AlphanumericSenderIDRetrieveResponse,
        value={"data": alphanumeric_sender_id_out(alpha)},
    )
    bulk = {"order_id": "b1", "success": ["+1"], "pending": [], "failed": ["x"]}
    got = validate_type(
        type_=MessagingNumbersBulkUpdateRetrieveResponse, value={"data": bulk_update_out(bulk)}
    ).data
    assert got is not None and got.record_type == "messaging_numbers_bulk_update"


@pytest.mark.parametrize(
    ("sender", "ok"),
    [
        ("Acme", True),
        ("A", True),
        ("Acme Co 42", True),
        ("ABCDEFGHIJK", True),
        ("ABCDEFGHIJKL", False),
        ("12345", False),
        ("   ", False),
        ("", False),
        ("Acme-Co", False),
        ("Acmé", False),
    ],
)
def test_alphanumeric_sender_id_format(sender: str, ok: bool) -> None:
    body = {"alphanumeric_sender_id": sender, "messaging_profile_id": "p"}
    if ok:
        assert AlphanumericSenderIdCreate.model_validate(body).alphanumeric_sender_id == sender
    else:
        with pytest.raises(ValidationError) as exc:
            AlphanumericSenderIdCreate.model_validate(body)
        assert exc.value.errors()[0]["loc"] == ("alphanumeric_sender_id",)


def test_request_models_are_strict() -> None:
    with pytest.raises(ValidationError):
        BulkUpdateCreate.model_validate(
            {"messaging_profile_id": "", "numbers": ["+1"], "assign_only": "true"}
        )
    with pytest.raises(ValidationError):
        MessagingSettingsUpdate.model_validate({"tags": [" "]})
    update = MessagingSettingsUpdate.model_validate({"messaging_profile_id": None, "extra": 1})
    assert update.messaging_profile_id is None and update.tags is None


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("+13125550100", "+13125550100"),
        (" 13125550100", "+13125550100"),  # a `+` decoded as a space
        ("1293384261075731499", "1293384261075731499"),
        ("13125550100", "13125550100"),  # matched with and without `+` by the repository
    ],
)
def test_number_key(raw: str, key: str) -> None:
    assert number_key(raw) == key


def test_health_ratios() -> None:
    assert _health(TrafficCounts()) == {
        "inbound_outbound_ratio": 0.0,
        "message_count": 0,
        "spam_ratio": 0.0,
        "success_ratio": 1.0,
    }
    got = _health(TrafficCounts(outbound=3, finalized=3, delivered=1, spam=1, inbound=6))
    assert got == {
        "inbound_outbound_ratio": 2.0,
        "message_count": 3,
        "spam_ratio": 0.3333,
        "success_ratio": 0.3333,
    }
    assert _health(TrafficCounts(inbound=2))["inbound_outbound_ratio"] == 2.0


def test_number_filter_parsing() -> None:
    f = number_filter(
        profile_id="null", number="+1312,  13125550100 ,", contains=" 555 ", number_type="TollFree"
    )
    assert f.unassigned and f.messaging_profile_id is None
    assert f.phone_numbers == ("+1312", "+13125550100")
    assert f.contains == "555"
    assert f.type == "toll-free"
    assert number_filter(number_type="shortcode").type == "short-code"
    assert number_filter(contains="  ").contains is None
    with pytest.raises(ApiError) as exc:
        number_filter(number_type="mobile")
    assert exc.value.parameter == "filter[type]" and exc.value.status == 400
    assert number_sort("DESC") == "desc" and number_sort(None) is None
    with pytest.raises(ApiError) as exc:
        number_sort("random")
    assert exc.value.parameter == "sort[phone_number]"


def test_order_filter_parsing() -> None:
    f = order_filter(
        status="success",
        count="2",
        met="TRUE",
        created_gt="2024-01-01T00:00:00Z",
    )
    assert f.status == "success" and f.phone_numbers_count == 2 and f.requirements_met is True
    assert f.created_after == datetime(2024, 1, 1, tzinfo=UTC)
    for kwargs, parameter in (
        ({"status": "done"}, "filter[status]"),
        ({"count": "two"}, "filter[phone_numbers_count]"),
        ({"met": "maybe"}, "filter[requirements_met]"),
        ({"created_lt": "soon"}, "filter[created_at][lt]"),
    ):
        with pytest.raises(ApiError) as exc:
            order_filter(**kwargs)  # type: ignore[arg-type]
        assert exc.value.parameter == parameter
