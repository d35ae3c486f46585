"""No null where Telnyx's spec has a value: profiles, auto-response configs and messages, checked on
the raw JSON (the SDK would read an absent field and a null alike)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from telnyx import Telnyx

from signalpost.optouts.keywords import DEFAULT_TEXTS
from tests.conftest import Account
from tests.support.media_server import PNG_HEAD, MediaServer
from tests.support.messaging import Sender, wait_final
from tests.support.server import RunningServer
from tests.support.wait import wait_until

# Fields the spec (and the contract, §4) types without null.
PROFILE_VALUES = (
    "record_type",
    "id",
    "name",
    "enabled",
    "webhook_api_version",
    "whitelisted_destinations",
    "daily_spend_limit",
    "daily_spend_limit_enabled",
    "mms_fall_back_to_sms",
    "mms_transcoding",
    "mobile_only",
    "smart_encoding",
    "redaction_enabled",
    "redaction_level",
    "v1_secret",
    "organization_id",
    "created_at",
    "updated_at",
)
MESSAGE_VALUES = (
    "record_type",
    "direction",
    "id",
    "type",
    "organization_id",
    "from",
    "to",
    "cc",
    "text",
    "media",
    "encoding",
    "parts",
    "num_chars",
    "tags",
    "received_at",
    "errors",
)
NEVER_NULL_WHEN_PRESENT = ("sent_at", "completed_at")


@pytest.fixture(scope="module")
def media() -> Iterator[MediaServer]:
    server = MediaServer().start()
    yield server
    server.stop()


@pytest.fixture
def raw(server: RunningServer, account: Account) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=f"{server.base_url}/v2",
        headers={"Authorization": f"Bearer {account.api_key}"},
        timeout=10,
    ) as http:
        yield http


def assert_values(obj: dict[str, Any], required: tuple[str, ...]) -> None:
    missing = [f for f in required if obj.get(f) is None]
    assert not missing, (missing, obj)
    nulls = [f for f in NEVER_NULL_WHEN_PRESENT if f in obj and obj[f] is None]
    assert not nulls, (nulls, obj)


def test_profile_daily_spend_limit_is_a_string_amount(client: Telnyx, raw: httpx.Client) -> None:
    profile = client.messaging_profiles.create(name="no limit", whitelisted_destinations=["US"])
    assert profile.data is not None and profile.data.daily_spend_limit == "0.00"
    got = raw.get(f"/messaging_profiles/{profile.data.id}").json()["data"]
    assert_values(got, PROFILE_VALUES)
    assert got["daily_spend_limit"] == "0.00" and got["daily_spend_limit_enabled"] is False
    listed = raw.get("/messaging_profiles").json()["data"]
    for p in listed:
        assert_values(p, PROFILE_VALUES)
    set_ = client.messaging_profiles.update(profile.data.id, daily_spend_limit="25.50").data
    assert set_ is not None and set_.daily_spend_limit == "25.50"


def test_autoresp_config_always_has_its_reply_text(client: Telnyx, raw: httpx.Client) -> None:
    profile = client.messaging_profiles.create(name="auto", whitelisted_destinations=["US"]).data
    assert profile is not None and profile.id
    configs = client.messaging_profiles.autoresp_configs
    created = configs.create(profile.id, op="info", keywords=["HELP"], country_code="US").data
    assert created.resp_text == DEFAULT_TEXTS["info"]
    got = raw.get(f"/messaging_profiles/{profile.id}/autoresp_configs/{created.id}").json()
    assert got["data"]["resp_text"] == DEFAULT_TEXTS["info"]
    own = configs.update(
        created.id,
        profile_id=profile.id,
        op="stop",
        keywords=["END"],
        country_code="*",
        resp_text="Bye.",
    ).data
    assert own.resp_text == "Bye."


def test_outbound_message_has_no_null_text_sent_at_or_completed_at(
    client: Telnyx, sender: Sender, raw: httpx.Client, media: MediaServer
) -> None:
    url, _ = media.add(2_000, "image/png", head=PNG_HEAD)
    accepted = raw.post(
        "/messages", json={"from": sender.number, "to": "+13125550102", "media_urls": [url]}
    )
    assert accepted.status_code == 200, accepted.text
    data = accepted.json()["data"]
    assert_values(data, MESSAGE_VALUES)
    assert data["text"] == ""
    assert "sent_at" not in data and "completed_at" not in data
    final = wait_final(client, data["id"])
    assert final.sent_at is not None and final.completed_at is not None
    done = raw.get(f"/messages/{data['id']}").json()["data"]
    assert_values(done, (*MESSAGE_VALUES, "sent_at", "completed_at"))


def test_scheduled_message_waits_without_null_timestamps(sender: Sender, raw: httpx.Client) -> None:
    send_at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = raw.post(
        "/messages/schedule",
        json={"from": sender.number, "to": "+13125550103", "text": "later", "send_at": send_at},
    )
    assert r.status_code == 200, r.text
    got = raw.get(f"/messages/{r.json()['data']['id']}").json()["data"]
    assert_values(got, MESSAGE_VALUES)
    assert "sent_at" not in got and "completed_at" not in got
    cancelled = raw.delete(f"/messages/{got['id']}").json()  # answered unwrapped
    assert_values(cancelled, MESSAGE_VALUES)


def test_inbound_message_without_text_or_timestamps_nulls(
    server: RunningServer, account: Account, sender: Sender, raw: httpx.Client, media: MediaServer
) -> None:
    url, _ = media.add(1_000, "image/png", head=PNG_HEAD)
    r = httpx.post(
        f"{server.base_url}/simulator/inbound",
        json={"from": "+13125550391", "to": sender.number, "media_urls": [url]},
        headers={"Authorization": f"Bearer {account.api_key}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert_values(data, MESSAGE_VALUES)
    assert data["text"] == ""
    assert "sent_at" not in data and "completed_at" not in data
    got = wait_until(lambda: raw.get(f"/messages/{data['id']}").json().get("data"))
    assert_values(got, MESSAGE_VALUES)
