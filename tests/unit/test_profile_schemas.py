"""Profile and auto-response request models: what is accepted, what is stored (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from signalpost.kit.errors import ApiError
from signalpost.kit.urls import is_http_url
from signalpost.profiles.schemas import (
    AutorespConfigBody,
    ProfileCreate,
    ProfileUpdate,
    check_urls,
)

BASE: dict[str, Any] = {"name": "p", "whitelisted_destinations": ["US"]}


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://example.com/hook", True),
        ("http://127.0.0.1:8080/x?y=1", True),
        ("ftp://example.com", False),
        ("https://", False),
        ("example.com/hook", False),
        ("https://exa mple.com", False),
        ("http://[::1", False),
        ("::::", False),
        ("file:///etc/passwd", False),
        ("gopher://example.com/", False),
        ("javascript:alert(1)", False),
        ("https://example.com/hook\n", False),
        ("https://exa\tmple.com/", False),
        ("https://example.com:99999/", False),
        ("https://example.com/" + "a" * 2000, False),
        # a host is posted to in its IDNA form: one that has none cannot be called back
        ("https://bücher.example/hook", True),
        ("http://a..b/hook", False),
        ("https://" + "a" * 64 + ".example/", False),
    ],
)
def test_is_http_url(url: str, ok: bool) -> None:
    assert is_http_url(url) is ok


@pytest.mark.parametrize("value", ["", None])
def test_empty_or_null_webhook_urls_mean_none(value: str | None) -> None:
    check_urls({"webhook_url": value, "webhook_failover_url": value})


def test_bad_webhook_url_is_code_10003_with_pointer() -> None:
    with pytest.raises(ApiError) as exc:
        check_urls({"webhook_failover_url": "mailto:a@b.c"})
    assert (exc.value.status, exc.value.code, exc.value.pointer) == (
        422,
        "10003",
        "/webhook_failover_url",
    )


@pytest.mark.parametrize(
    ("destinations", "ok"),
    [
        (["US", "CA"], True),
        (["*"], True),
        ([], True),
        (["us"], False),
        (["USA"], False),
        (["*", "US"], False),
        ([1], False),
    ],
)
def test_whitelisted_destinations(destinations: list[Any], ok: bool) -> None:
    body = {**BASE, "whitelisted_destinations": destinations}
    if ok:
        assert ProfileCreate.model_validate(body).whitelisted_destinations == destinations
    else:
        with pytest.raises(ValidationError):
            ProfileCreate.model_validate(body)


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [
        ("alpha_sender", "Acme 1", True),
        ("alpha_sender", "ABCDEFGHIJK", True),
        ("alpha_sender", "ABCDEFGHIJKL", False),
        ("alpha_sender", "Acme!", False),
        ("alpha_sender", None, True),
        ("daily_spend_limit", "100", True),
        ("daily_spend_limit", "0.50", True),
        ("daily_spend_limit", ".5", False),
        ("daily_spend_limit", "1e3", False),
        ("daily_spend_limit", 100, False),
        ("webhook_api_version", "2010-04-01", True),
        ("webhook_api_version", "3", False),
        ("redaction_level", 1, True),
        ("redaction_level", 0, False),
        ("redaction_level", True, False),
        ("enabled", "true", False),
        ("enabled", 1, False),
    ],
)
def test_field_rules(field: str, value: Any, ok: bool) -> None:
    body = {**BASE, field: value}
    if ok:
        assert ProfileCreate.model_validate(body).given()[field] == value
    else:
        with pytest.raises(ValidationError) as exc:
            ProfileCreate.model_validate(body)
        assert exc.value.errors()[0]["loc"][0] == field


def test_update_distinguishes_omitted_from_null() -> None:
    assert ProfileUpdate.model_validate({}).given() == {}
    given = ProfileUpdate.model_validate(
        {"number_pool_settings": None, "url_shortener_settings": None, "webhook_url": None}
    ).given()
    assert given == {
        "number_pool_settings": None,
        "url_shortener_settings": None,
        "webhook_url": None,
    }
    with pytest.raises(ValidationError):
        ProfileUpdate.model_validate({"name": None})


def test_nested_settings_are_stored_with_their_defaults() -> None:
    given = ProfileCreate.model_validate(
        {
            **BASE,
            "number_pool_settings": {
                "long_code_weight": 1,
                "toll_free_weight": 0,
                "skip_unhealthy": True,
            },
            "url_shortener_settings": {"domain": "acme.link"},
        }
    ).given()
    assert given["number_pool_settings"] == {
        "long_code_weight": 1,
        "toll_free_weight": 0,
        "skip_unhealthy": True,
        "sticky_sender": False,
        "geomatch": False,
    }
    assert given["url_shortener_settings"] == {
        "domain": "acme.link",
        "prefix": "",
        "replace_blacklist_only": False,
        "send_webhooks": False,
    }


def test_features_keep_unknown_keys_and_null_means_none() -> None:
    features = {"ai_opt_out_detection_enabled": False, "later": {"a": [1, 2]}}
    assert ProfileUpdate.model_validate({"features": features}).given()["features"] == features
    assert ProfileUpdate.model_validate({"features": None}).given()["features"] == {}


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        ({"op": "stop", "keywords": ["STOP", "END"], "country_code": "US"}, True),
        ({"op": "info", "keywords": ["HELP"], "country_code": "*", "resp_text": "Hi"}, True),
        ({"op": "halt", "keywords": ["STOP"], "country_code": "US"}, False),
        ({"op": "stop", "keywords": [], "country_code": "US"}, False),
        ({"op": "stop", "keywords": [" "], "country_code": "US"}, False),
        ({"op": "stop", "keywords": ["STOP"], "country_code": "us"}, False),
        ({"op": "stop", "keywords": ["STOP"], "country_code": "**"}, False),
    ],
)
def test_autoresp_config_body(body: dict[str, Any], ok: bool) -> None:
    if ok:
        assert AutorespConfigBody.model_validate(body).op == body["op"]
    else:
        with pytest.raises(ValidationError):
            AutorespConfigBody.model_validate(body)
