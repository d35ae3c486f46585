"""Messaging profiles and auto-response configs through the official SDK (contract §8, §4.6, §4.8)."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import telnyx
from sqlalchemy import insert, select, update
from telnyx import Telnyx

from signalpost.context import AppContext
from signalpost.kit.clock import utcnow
from signalpost.kit.ids import new_uuid, numeric_id
from signalpost.models import (
    alphanumeric_sender_ids,
    autoresp_configs,
    phone_numbers,
    short_codes,
)
from signalpost.optouts.keywords import DEFAULT_TEXTS
from tests.conftest import Account, unique_number
from tests.support.server import RunningServer

EVERY_FIELD: dict[str, Any] = {
    "enabled": False,
    "webhook_url": "https://example.com/hooks/primary",
    "webhook_failover_url": "http://example.com:8080/hooks/failover?x=1",
    "webhook_api_version": "2010-04-01",
    "alpha_sender": "Acme Co 42",
    "daily_spend_limit": "269.125",
    "daily_spend_limit_enabled": True,
    "mms_fall_back_to_sms": True,
    "mms_transcoding": True,
    "mobile_only": True,
    "smart_encoding": True,
    "number_pool_settings": {
        "long_code_weight": 1.5,
        "toll_free_weight": 10,
        "skip_unhealthy": True,
        "sticky_sender": True,
        "geomatch": True,
    },
    "url_shortener_settings": {
        "domain": "acme.link",
        "prefix": "promo",
        "replace_blacklist_only": True,
        "send_webhooks": True,
    },
    "features": {"ai_opt_out_detection_enabled": True, "future_flag": {"level": 3}},
    "ai_assistant_id": "assistant-1",
    "resource_group_id": "group-7",
    "health_webhook_url": "https://example.com/health",
}


@pytest.fixture(scope="module", autouse=True)
def acme_link_domain(server: RunningServer) -> None:
    """`acme.link` (named in EVERY_FIELD) is a link domain every organization may use."""
    from signalpost.links import service as links

    async def go(ctx: AppContext) -> None:
        async with ctx.db.transaction() as uow:
            await links.add_domain(uow, "acme.link", organization_id=None)

    server.run(go)


@pytest.fixture
def raw(server: RunningServer, account: Account) -> Iterator[httpx.Client]:
    """Plain HTTP with the account's key, for what the SDK would not send or would parse."""
    with httpx.Client(
        base_url=f"{server.base_url}/v2",
        headers={"Authorization": f"Bearer {account.api_key}"},
    ) as c:
        yield c


def create_profile(client: Telnyx, name: str | None = None, **fields: Any) -> str:
    profile = client.messaging_profiles.create(
        name=name or f"profile {uuid.uuid4().hex[:8]}",
        whitelisted_destinations=fields.pop("whitelisted_destinations", ["US"]),
        **fields,
    ).data
    assert profile is not None and profile.id
    return profile.id


def error_of(exc: telnyx.APIStatusError) -> dict[str, Any]:
    body = exc.body
    assert isinstance(body, dict), body
    errors = body["errors"]
    assert len(errors) >= 1
    first: dict[str, Any] = errors[0]
    return first


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- create / retrieve ------------------------------------------------------------------------


def test_create_applies_the_documented_defaults(client: Telnyx, account: Account) -> None:
    profile = client.messaging_profiles.create(
        name="Defaults", whitelisted_destinations=["US", "CA"]
    ).data
    assert profile is not None
    assert profile.record_type == "messaging_profile"
    assert profile.name == "Defaults"
    assert profile.whitelisted_destinations == ["US", "CA"]
    assert profile.enabled is True
    assert profile.webhook_url == ""
    assert profile.webhook_failover_url == ""
    assert profile.webhook_api_version == "2"
    for flag in (
        "daily_spend_limit_enabled",
        "mms_fall_back_to_sms",
        "mms_transcoding",
        "mobile_only",
        "smart_encoding",
        "redaction_enabled",
    ):
        assert getattr(profile, flag) is False, flag
    assert profile.redaction_level == 2
    assert profile.number_pool_settings is None
    assert profile.url_shortener_settings is None
    assert profile.alpha_sender is None
    assert profile.v1_secret and len(profile.v1_secret) >= 24
    assert profile.organization_id == account.org.id
    assert profile.created_at is not None and profile.created_at == profile.updated_at
    assert profile.created_at.tzinfo is not None


def test_every_field_round_trips_through_create_and_retrieve(
    client: Telnyx, raw: httpx.Client
) -> None:
    profile_id = create_profile(client, "Everything", whitelisted_destinations=["*"], **EVERY_FIELD)
    got = client.messaging_profiles.retrieve(profile_id).data
    assert got is not None
    assert got.whitelisted_destinations == ["*"]
    assert got.number_pool_settings is not None
    assert got.number_pool_settings.long_code_weight == 1.5
    assert got.number_pool_settings.toll_free_weight == 10
    assert got.number_pool_settings.sticky_sender is True
    assert got.url_shortener_settings is not None
    assert got.url_shortener_settings.domain == "acme.link"
    assert got.features is not None and got.features.ai_opt_out_detection_enabled is True
    assert (got.features.model_extra or {})["future_flag"] == {"level": 3}

    wire = raw.get(f"/messaging_profiles/{profile_id}").json()["data"]
    for name, value in EVERY_FIELD.items():
        assert wire[name] == value, name
    assert wire["name"] == "Everything"


def test_retrieve_unknown_profile_is_404(client: Telnyx) -> None:
    with pytest.raises(telnyx.NotFoundError) as exc:
        client.messaging_profiles.retrieve(str(uuid.uuid4()))
    assert exc.value.status_code == 404
    assert error_of(exc.value)["code"] == "10005"
    with pytest.raises(telnyx.NotFoundError):
        client.messaging_profiles.retrieve("not-a-uuid")


def test_requests_without_a_key_are_401(server: RunningServer) -> None:
    r = httpx.get(f"{server.base_url}/v2/messaging_profiles")
    assert r.status_code == 401
    assert r.json()["errors"][0]["code"] == "10009"


# --- update -----------------------------------------------------------------------------------


def test_patch_changes_only_the_fields_sent(client: Telnyx, raw: httpx.Client) -> None:
    profile_id = create_profile(client, "Before", **EVERY_FIELD)
    before = raw.get(f"/messaging_profiles/{profile_id}").json()["data"]

    after = client.messaging_profiles.update(profile_id, name="After").data
    assert after is not None and after.name == "After"
    wire = raw.get(f"/messaging_profiles/{profile_id}").json()["data"]
    changed = {k for k in wire if wire[k] != before[k]}
    assert changed <= {"name", "updated_at"}
    assert "name" in changed
    assert ts(wire["updated_at"]) >= ts(before["updated_at"])


def test_patch_round_trips_every_field(client: Telnyx, raw: httpx.Client) -> None:
    profile_id = create_profile(client)
    changes: dict[str, Any] = {
        **EVERY_FIELD,
        "name": "Renamed",
        "whitelisted_destinations": ["GB", "DE"],
        "redaction_enabled": True,
        "redaction_level": 1,
        "v1_secret": "my-own-secret",
    }
    sdk_fields = {
        k: v for k, v in changes.items() if k not in ("resource_group_id", "health_webhook_url")
    }
    updated = client.messaging_profiles.update(profile_id, **sdk_fields).data
    assert (
        updated is not None
        and updated.redaction_level == 1
        and updated.v1_secret == "my-own-secret"
    )
    # The TS SDK also sends these two on update.
    r = raw.patch(
        f"/messaging_profiles/{profile_id}",
        json={"resource_group_id": "group-7", "health_webhook_url": "https://example.com/health"},
    )
    assert r.status_code == 200, r.text
    wire = raw.get(f"/messaging_profiles/{profile_id}").json()["data"]
    for name, value in changes.items():
        assert wire[name] == value, name


def test_patch_null_disables_number_pool_and_url_shortener(client: Telnyx) -> None:
    profile_id = create_profile(
        client,
        number_pool_settings=EVERY_FIELD["number_pool_settings"],
        url_shortener_settings=EVERY_FIELD["url_shortener_settings"],
        alpha_sender="Acme",
        webhook_url="https://example.com/a",
    )
    updated = client.messaging_profiles.update(
        profile_id,
        number_pool_settings=None,
        url_shortener_settings=None,
        alpha_sender=None,
        webhook_url=None,
    ).data
    assert updated is not None
    assert updated.number_pool_settings is None
    assert updated.url_shortener_settings is None
    assert updated.alpha_sender is None
    assert updated.webhook_url is None
    again = client.messaging_profiles.retrieve(profile_id).data
    assert again is not None and again.number_pool_settings is None


def test_number_pool_optional_flags_default_to_false(client: Telnyx) -> None:
    profile_id = create_profile(
        client,
        number_pool_settings={
            "long_code_weight": 0,
            "toll_free_weight": 2,
            "skip_unhealthy": False,
        },
    )
    got = client.messaging_profiles.retrieve(profile_id).data
    assert got is not None and got.number_pool_settings is not None
    assert got.number_pool_settings.sticky_sender is False
    assert got.number_pool_settings.geomatch is False
    assert got.number_pool_settings.long_code_weight == 0


def test_regenerate_secret_replaces_v1_secret(client: Telnyx) -> None:
    profile_id = create_profile(client)
    first = client.messaging_profiles.retrieve(profile_id).data
    assert first is not None and first.v1_secret
    regenerated = client.messaging_profiles.actions.regenerate_secret(profile_id).data
    assert regenerated is not None and regenerated.id == profile_id
    assert regenerated.v1_secret and regenerated.v1_secret != first.v1_secret
    again = client.messaging_profiles.retrieve(profile_id).data
    assert again is not None and again.v1_secret == regenerated.v1_secret
    with pytest.raises(telnyx.NotFoundError):
        client.messaging_profiles.actions.regenerate_secret(str(uuid.uuid4()))


# --- list -------------------------------------------------------------------------------------


def test_list_auto_paginates_in_creation_order(client: Telnyx, raw: httpx.Client) -> None:
    ids = [create_profile(client, f"Paged {i}") for i in range(5)]
    seen = [p.id for p in client.messaging_profiles.list(page_size=2)]
    assert seen == ids
    meta = raw.get("/messaging_profiles", params={"page[size]": 2, "page[number]": 3}).json()[
        "meta"
    ]
    assert meta == {"page_number": 3, "page_size": 2, "total_pages": 3, "total_results": 5}
    beyond = raw.get("/messaging_profiles", params={"page[size]": 2, "page[number]": 9}).json()
    assert beyond["data"] == [] and beyond["meta"]["page_number"] == 9


def test_list_filters_by_name(client: Telnyx) -> None:
    alpha = create_profile(client, "Alpha Support")
    beta = create_profile(client, "Beta support")
    gamma = create_profile(client, "Gamma 100%")

    def names(**params: Any) -> list[str | None]:
        return [p.id for p in client.messaging_profiles.list(**params)]

    assert names(filter={"name": "Alpha Support"}) == [alpha]
    assert names(filter_name_eq="Beta support") == [beta]
    assert names(filter_name_eq="beta") == []
    assert names(filter_name_contains="SUPPORT") == [alpha, beta]
    assert names(filter_name_contains="100%") == [gamma]
    assert names(filter_name_contains="%") == [gamma]
    assert names(filter_name_contains="Gamma", filter_name_eq="Alpha Support") == []


def test_list_rejects_bad_page_parameters(raw: httpx.Client) -> None:
    r = raw.get("/messaging_profiles", params={"page[size]": 0})
    assert r.status_code == 400
    err = r.json()["errors"][0]
    assert err["code"] == "10015" and err["source"]["parameter"] == "page[size]"


# --- delete -----------------------------------------------------------------------------------


_sender_counter = itertools.count(os.getpid() % 1000 * 1000)


def _attach_senders(server: RunningServer, org_id: str, profile_id: str) -> dict[str, str]:
    """A number, a short code and an alphanumeric sender ID on the profile, written directly."""
    ids = {"number": numeric_id(), "short_code": new_uuid(), "alpha": new_uuid()}
    n = next(_sender_counter)

    async def go(ctx: AppContext) -> None:
        now = utcnow()
        async with ctx.db.transaction() as uow:
            await uow.conn.execute(
                insert(phone_numbers).values(
                    id=ids["number"],
                    organization_id=org_id,
                    phone_number=unique_number(),
                    country_code="US",
                    type="long-code",
                    messaging_profile_id=profile_id,
                    tags=["a"],
                    created_at=now,
                    updated_at=now,
                )
            )
            await uow.conn.execute(
                insert(short_codes).values(
                    id=ids["short_code"],
                    organization_id=org_id,
                    short_code=f"{n:06d}",
                    country_code="US",
                    messaging_profile_id=profile_id,
                    tags=[],
                    created_at=now,
                    updated_at=now,
                )
            )
            await uow.conn.execute(
                insert(alphanumeric_sender_ids).values(
                    id=ids["alpha"],
                    organization_id=org_id,
                    alphanumeric_sender_id=f"Acme{n:06d}",
                    messaging_profile_id=profile_id,
                    us_long_code_fallback=None,
                    created_at=now,
                    updated_at=now,
                )
            )

    server.run(go)
    return ids


def _column(server: RunningServer, table: Any, column: str, row_id: str) -> list[Any]:
    async def go(ctx: AppContext) -> list[Any]:
        async with ctx.db.transaction() as uow:
            q = select(table.c[column]).where(table.c.id == row_id)
            return list((await uow.conn.execute(q)).scalars().all())

    return server.run(go)


def test_delete_returns_the_profile_and_detaches_its_senders(
    client: Telnyx, account: Account, server: RunningServer
) -> None:
    profile_id = create_profile(client, "Doomed", alpha_sender="Doomed")
    senders = _attach_senders(server, account.org.id, profile_id)
    cfg = client.messaging_profiles.autoresp_configs.create(
        profile_id, op="stop", keywords=["STOP"], country_code="US"
    ).data

    deleted = client.messaging_profiles.delete(profile_id).data
    assert deleted is not None
    assert (
        deleted.id == profile_id and deleted.name == "Doomed" and deleted.alpha_sender == "Doomed"
    )

    with pytest.raises(telnyx.NotFoundError) as exc:
        client.messaging_profiles.retrieve(profile_id)
    assert error_of(exc.value)["code"] == "10005"
    with pytest.raises(telnyx.NotFoundError):
        client.messaging_profiles.delete(profile_id)
    assert _column(server, phone_numbers, "messaging_profile_id", senders["number"]) == [None]
    assert _column(server, short_codes, "messaging_profile_id", senders["short_code"]) == [None]
    assert _column(server, alphanumeric_sender_ids, "id", senders["alpha"]) == []
    assert _column(server, autoresp_configs, "id", cfg.id) == []


# --- senders on a profile ---------------------------------------------------------------------


def test_profile_sub_lists_show_its_senders(
    client: Telnyx, account: Account, server: RunningServer
) -> None:
    profile_id = create_profile(client)
    other_id = create_profile(client)
    senders = [_attach_senders(server, account.org.id, profile_id) for _ in range(3)]
    _attach_senders(server, account.org.id, other_id)

    numbers = list(client.messaging_profiles.list_phone_numbers(profile_id, page_size=2))
    assert sorted(n.id or "" for n in numbers) == sorted(s["number"] for s in senders)
    first = numbers[0]
    assert first.record_type == "messaging_phone_number"
    assert first.messaging_profile_id == profile_id
    assert first.organization_id == account.org.id
    assert first.country_code == "US" and first.type == "long-code"
    assert first.phone_number and first.phone_number.startswith("+1")
    assert first.features is not None and first.features.sms is not None
    assert first.tags == ["a"]

    codes = list(client.messaging_profiles.list_short_codes(profile_id, page_size=2))
    assert sorted(c.id or "" for c in codes) == sorted(s["short_code"] for s in senders)
    assert all(
        c.record_type == "short_code" and c.messaging_profile_id == profile_id for c in codes
    )

    alphas = list(client.messaging_profiles.list_alphanumeric_sender_ids(profile_id, page_size=2))
    assert sorted(a.id or "" for a in alphas) == sorted(s["alpha"] for s in senders)
    assert all((a.alphanumeric_sender_id or "").startswith("Acme") for a in alphas)
    assert all(a.organization_id == account.org.id for a in alphas)

    empty = create_profile(client)
    page = client.messaging_profiles.list_phone_numbers(empty)
    assert page.data == [] and not page.has_next_page()


# --- auto-response configs --------------------------------------------------------------------


def test_autoresp_config_crud(client: Telnyx, raw: httpx.Client) -> None:
    profile_id = create_profile(client)
    configs = client.messaging_profiles.autoresp_configs
    created = configs.create(
        profile_id, op="info", keywords=["HELP", "INFO"], country_code="US", resp_text="Call us."
    ).data
    assert created.op == "info" and created.keywords == ["HELP", "INFO"]
    assert created.country_code == "US" and created.resp_text == "Call us."
    assert created.created_at == created.updated_at

    got = configs.retrieve(created.id, profile_id=profile_id).data
    assert got == created

    replaced = configs.update(
        created.id, profile_id=profile_id, op="stop", keywords=["END"], country_code="*"
    ).data
    assert replaced.id == created.id
    assert (replaced.op, replaced.keywords, replaced.country_code) == ("stop", ["END"], "*")
    # PUT replaces the whole config: without its own text it replies with the default one.
    assert replaced.resp_text == DEFAULT_TEXTS["stop"]
    assert replaced.updated_at >= created.updated_at and replaced.created_at == created.created_at

    listed = configs.list(profile_id)
    assert [c.id for c in listed.data] == [created.id]
    assert listed.meta.total_results == 1 and listed.meta.page_number == 1

    assert configs.delete(created.id, profile_id=profile_id) == '"OK"'
    with pytest.raises(telnyx.NotFoundError) as exc:
        configs.retrieve(created.id, profile_id=profile_id)
    assert error_of(exc.value)["code"] == "10005"

    again = configs.create(profile_id, op="start", keywords=["START"], country_code="CA").data
    r = raw.delete(f"/messaging_profiles/{profile_id}/autoresp_configs/{again.id}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == "OK"


def test_autoresp_list_filters(client: Telnyx, server: RunningServer) -> None:
    profile_id = create_profile(client)
    configs = client.messaging_profiles.autoresp_configs
    old = configs.create(profile_id, op="stop", keywords=["STOP"], country_code="US").data
    new = configs.create(profile_id, op="info", keywords=["HELP"], country_code="GB").data

    async def backdate(ctx: AppContext) -> None:
        when = datetime(2020, 1, 1, tzinfo=UTC)
        async with ctx.db.transaction() as uow:
            await uow.conn.execute(
                update(autoresp_configs)
                .where(autoresp_configs.c.id == old.id)
                .values(created_at=when, updated_at=when)
            )

    server.run(backdate)

    def ids(**params: Any) -> list[str]:
        return [c.id for c in configs.list(profile_id, **params).data]

    assert ids() == [old.id, new.id]
    assert ids(country_code="GB") == [new.id]
    assert ids(created_at={"lte": "2021-01-01T00:00:00Z"}) == [old.id]
    assert ids(created_at={"gte": "2021-01-01T00:00:00Z"}) == [new.id]
    assert ids(updated_at={"gte": "2019-12-31T00:00:00Z", "lte": "2020-01-01T00:00:00Z"}) == [
        old.id
    ]
    assert ids(updated_at={"lte": "2019-01-01T00:00:00Z"}) == []
    # A timestamp read back from the API is an inclusive bound for its own row.
    assert ids(
        created_at={"gte": new.created_at.isoformat(), "lte": new.created_at.isoformat()}
    ) == [new.id]

    with pytest.raises(telnyx.BadRequestError) as exc:
        configs.list(profile_id, created_at={"gte": "yesterday"})
    err = error_of(exc.value)
    assert err["code"] == "10015" and err["source"]["parameter"] == "created_at[gte]"


@pytest.mark.parametrize(
    ("body", "status", "code", "pointer"),
    [
        ({"op": "halt", "keywords": ["STOP"], "country_code": "US"}, 422, "10015", "/op"),
        ({"op": "stop", "keywords": [], "country_code": "US"}, 422, "10015", "/keywords"),
        (
            {"op": "stop", "keywords": ["STOP", ""], "country_code": "US"},
            422,
            "10015",
            "/keywords/1",
        ),
        ({"op": "stop", "keywords": "STOP", "country_code": "US"}, 422, "10015", "/keywords"),
        ({"op": "stop", "keywords": [7], "country_code": "US"}, 422, "10015", "/keywords/0"),
        (
            {"op": "stop", "keywords": ["STOP"], "country_code": "usa"},
            422,
            "10015",
            "/country_code",
        ),
        ({"op": "stop", "keywords": ["STOP"]}, 422, "10004", "/country_code"),
        ({"keywords": ["STOP"], "country_code": "US"}, 422, "10004", "/op"),
    ],
)
def test_autoresp_validation(
    client: Telnyx,
    raw: httpx.Client,
    body: dict[str, Any],
    status: int,
    code: str,
    pointer: str,
) -> None:
    profile_id = create_profile(client)
    for method, path in (
        ("POST", f"/messaging_profiles/{profile_id}/autoresp_configs"),
        ("PUT", f"/messaging_profiles/{profile_id}/autoresp_configs/{uuid.uuid4()}"),
    ):
        r = raw.request(method, path, json=body)
        assert r.status_code == status, r.text
        err = r.json()["errors"][0]
        assert err["code"] == code and err["source"]["pointer"] == pointer, err


def test_autoresp_of_unknown_profile_or_config_is_404(client: Telnyx) -> None:
    configs = client.messaging_profiles.autoresp_configs
    missing = str(uuid.uuid4())
    with pytest.raises(telnyx.NotFoundError):
        configs.list(missing)
    with pytest.raises(telnyx.NotFoundError):
        configs.create(missing, op="stop", keywords=["STOP"], country_code="US")
    profile_id = create_profile(client)
    other_profile = create_profile(client)
    cfg = configs.create(other_profile, op="stop", keywords=["STOP"], country_code="US").data
    # A config is reached only through its own profile.
    for call in (
        lambda: configs.retrieve(cfg.id, profile_id=profile_id),
        lambda: configs.update(
            cfg.id, profile_id=profile_id, op="stop", keywords=["X"], country_code="US"
        ),
        lambda: configs.delete(cfg.id, profile_id=profile_id),
        lambda: configs.retrieve(missing, profile_id=profile_id),
    ):
        with pytest.raises(telnyx.NotFoundError) as exc:
            call()
        assert error_of(exc.value)["code"] == "10005"


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "status", "code", "pointer"),
    [
        ({"alpha_sender": "Way Too Long 1"}, 422, "10015", "/alpha_sender"),
        ({"alpha_sender": "Acme-Co"}, 422, "10015", "/alpha_sender"),
        ({"alpha_sender": ""}, 422, "10015", "/alpha_sender"),
        ({"whitelisted_destinations": ["US", "usa"]}, 422, "10015", "/whitelisted_destinations/1"),
        ({"whitelisted_destinations": ["*", "US"]}, 422, "10015", "/whitelisted_destinations"),
        ({"whitelisted_destinations": "US"}, 422, "10015", "/whitelisted_destinations"),
        ({"daily_spend_limit": "12,50"}, 422, "10015", "/daily_spend_limit"),
        ({"daily_spend_limit": "-1"}, 422, "10015", "/daily_spend_limit"),
        ({"daily_spend_limit": 100}, 422, "10015", "/daily_spend_limit"),
        (
            {"number_pool_settings": {"long_code_weight": 1, "toll_free_weight": 1}},
            422,
            "10004",
            "/number_pool_settings/skip_unhealthy",
        ),
        (
            {"number_pool_settings": {"toll_free_weight": 1, "skip_unhealthy": True}},
            422,
            "10004",
            "/number_pool_settings/long_code_weight",
        ),
        (
            {
                "number_pool_settings": {
                    "long_code_weight": -1,
                    "toll_free_weight": 1,
                    "skip_unhealthy": True,
                }
            },
            422,
            "10015",
            "/number_pool_settings/long_code_weight",
        ),
        (
            {"url_shortener_settings": {"prefix": "x"}},
            422,
            "10004",
            "/url_shortener_settings/domain",
        ),
        ({"webhook_api_version": "3"}, 422, "10015", "/webhook_api_version"),
        ({"webhook_api_version": 2}, 422, "10015", "/webhook_api_version"),
        ({"webhook_url": "ftp://example.com/x"}, 422, "10003", "/webhook_url"),
        ({"webhook_failover_url": "not a url"}, 422, "10003", "/webhook_failover_url"),
        ({"webhook_url": "http://a..b/hook"}, 422, "10003", "/webhook_url"),
        ({"health_webhook_url": "example.com"}, 422, "10003", "/health_webhook_url"),
        ({"enabled": "yes"}, 422, "10015", "/enabled"),
        ({"enabled": None}, 422, "10015", "/enabled"),
        ({"redaction_level": 3}, 422, "10015", "/redaction_level"),
        (
            {"features": {"ai_opt_out_detection_enabled": "on"}},
            422,
            "10015",
            "/features/ai_opt_out_detection_enabled",
        ),
        ({"ai_assistant_id": "x" * 65}, 422, "10015", "/ai_assistant_id"),
    ],
)
def test_invalid_profile_fields_are_rejected_on_create_and_update(
    client: Telnyx,
    raw: httpx.Client,
    fields: dict[str, Any],
    status: int,
    code: str,
    pointer: str,
) -> None:
    profile_id = create_profile(client)
    before = raw.get(f"/messaging_profiles/{profile_id}").json()["data"]
    create_body = {"name": "Invalid", "whitelisted_destinations": ["US"], **fields}
    for method, path, body in (
        ("POST", "/messaging_profiles", create_body),
        ("PATCH", f"/messaging_profiles/{profile_id}", fields),
    ):
        r = raw.request(method, path, json=body)
        assert r.status_code == status, (method, r.text)
        assert r.headers["x-should-retry"] == "false"
        err = r.json()["errors"][0]
        assert err["code"] == code, (method, err)
        assert err["source"]["pointer"] == pointer, (method, err)
        assert err["title"]
    assert raw.get(f"/messaging_profiles/{profile_id}").json()["data"] == before
    names = [p.name for p in client.messaging_profiles.list()]
    assert "Invalid" not in names


def test_sdk_surfaces_validation_errors(client: Telnyx) -> None:
    with pytest.raises(telnyx.UnprocessableEntityError) as exc:
        client.messaging_profiles.create(
            name="Bad", whitelisted_destinations=["US"], alpha_sender="Not_Allowed!"
        )
    err = error_of(exc.value)
    assert err["code"] == "10015" and err["source"]["pointer"] == "/alpha_sender"


@pytest.mark.parametrize(
    ("body", "code", "pointer"),
    [
        ({"whitelisted_destinations": ["US"]}, "10004", "/name"),
        ({"name": "No destinations"}, "10004", "/whitelisted_destinations"),
        ({"name": "", "whitelisted_destinations": ["US"]}, "10015", "/name"),
    ],
)
def test_create_requires_name_and_destinations(
    raw: httpx.Client, body: dict[str, Any], code: str, pointer: str
) -> None:
    r = raw.post("/messaging_profiles", json=body)
    assert r.status_code == 422, r.text
    err = r.json()["errors"][0]
    assert err["code"] == code and err["source"]["pointer"] == pointer


@pytest.mark.parametrize("field", ["name", "whitelisted_destinations", "v1_secret"])
def test_patch_rejects_null_for_required_fields(
    client: Telnyx, raw: httpx.Client, field: str
) -> None:
    profile_id = create_profile(client)
    r = raw.patch(f"/messaging_profiles/{profile_id}", json={field: None})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["source"]["pointer"] == f"/{field}"


def test_malformed_bodies(client: Telnyx, raw: httpx.Client) -> None:
    r = raw.post(
        "/messaging_profiles", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "10023"
    r = raw.post("/messaging_profiles", json=["a list"])
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "10015"
    profile_id = create_profile(client)
    r = raw.patch(f"/messaging_profiles/{profile_id}", json="text")
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "10015"


# --- organization isolation -------------------------------------------------------------------


def test_another_organization_cannot_see_or_touch_a_profile(
    client: Telnyx, other_account: Account, account: Account, server: RunningServer
) -> None:
    profile_id = create_profile(client, "Private")
    _attach_senders(server, account.org.id, profile_id)
    cfg = client.messaging_profiles.autoresp_configs.create(
        profile_id, op="stop", keywords=["STOP"], country_code="US"
    ).data
    other = other_account.client
    configs = other.messaging_profiles.autoresp_configs
    calls = {
        "retrieve": lambda: other.messaging_profiles.retrieve(profile_id),
        "update": lambda: other.messaging_profiles.update(profile_id, name="Stolen"),
        "delete": lambda: other.messaging_profiles.delete(profile_id),
        "regenerate": lambda: other.messaging_profiles.actions.regenerate_secret(profile_id),
        "numbers": lambda: other.messaging_profiles.list_phone_numbers(profile_id),
        "short_codes": lambda: other.messaging_profiles.list_short_codes(profile_id),
        "alphas": lambda: other.messaging_profiles.list_alphanumeric_sender_ids(profile_id),
        "autoresp list": lambda: configs.list(profile_id),
        "autoresp create": lambda: configs.create(
            profile_id, op="info", keywords=["X"], country_code="US"
        ),
        "autoresp retrieve": lambda: configs.retrieve(cfg.id, profile_id=profile_id),
        "autoresp update": lambda: configs.update(
            cfg.id, profile_id=profile_id, op="info", keywords=["X"], country_code="US"
        ),
        "autoresp delete": lambda: configs.delete(cfg.id, profile_id=profile_id),
    }
    for name, call in calls.items():
        with pytest.raises(telnyx.NotFoundError) as exc:
            call()
        assert error_of(exc.value)["code"] == "10005", name

    assert profile_id not in [p.id for p in other.messaging_profiles.list()]
    assert [p.id for p in other.messaging_profiles.list(filter_name_eq="Private")] == []
    mine = client.messaging_profiles.retrieve(profile_id).data
    assert mine is not None and mine.name == "Private"
    assert [c.id for c in client.messaging_profiles.autoresp_configs.list(profile_id).data] == [
        cfg.id
    ]
