"""Every list route of the application, found in its own OpenAPI document, answers a page number
or size that is huge (past 64 bits), negative, zero or not a number with 400, code 10015 and
`source.parameter` naming the parameter (issue 15: these were 500s on both databases); so do the
other numeric and date-time query parameters out of range."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
import telnyx
from telnyx import Telnyx

from signalpost.kit.pagination import MAX_PAGE_NUMBER, MAX_PAGE_SIZE
from tests.conftest import Account
from tests.support.messaging import Sender
from tests.support.server import RunningServer

BAD_VALUES = [
    "9" * 30,
    str(2**63),
    str(2**64),
    str(MAX_PAGE_NUMBER + 1),
    "-1",
    "-" + "9" * 30,
    "0",
    "abc",
    "1.5",
    "1e3",
    "0x10",
    "١",  # a digit, but not an ASCII one
    " ",
]
PAGE_PARAMETERS = ("page[number]", "page[size]")


def list_routes(server: RunningServer) -> list[str]:
    """The paths of every GET operation of the OpenAPI document that takes page parameters."""
    document = httpx.get(f"{server.base_url}/openapi.json").json()
    paths = []
    for path, operations in document["paths"].items():
        get = operations.get("get")
        names = {p["name"] for p in (get or {}).get("parameters", [])}
        if get and set(PAGE_PARAMETERS) <= names:
            paths.append(path)
    return paths


def _fill(path: str, profile_id: str) -> str:
    """The path with its parameters filled in: a real messaging profile's id (the only path
    parameter list routes have; a new one would make this fail until it is given a value)."""
    filled = path.replace("{profile_id}", profile_id)
    assert not re.search(r"\{\w+\}", filled), f"no value for the path parameters of {path}"
    return filled


def _get(server: RunningServer, key: str, path: str, params: dict[str, str]) -> httpx.Response:
    return httpx.get(
        f"{server.base_url}{path}",
        params=params,
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )


@pytest.fixture
def profile_id(client: Telnyx) -> str:
    profile = client.messaging_profiles.create(name="lists", whitelisted_destinations=["US"]).data
    assert profile is not None
    return profile.id


def test_the_walk_finds_the_list_routes(server: RunningServer) -> None:
    routes = list_routes(server)
    for expected in (
        "/v2/messaging_profiles",
        "/v2/messaging_profiles/{profile_id}/phone_numbers",
        "/v2/messaging_profiles/{profile_id}/autoresp_configs",
        "/v2/phone_numbers/messaging",
        "/v2/number_orders",
        "/v2/messaging_optouts",
        "/v2/webhook_deliveries",
        "/analytics/link_clicks",
    ):
        assert expected in routes


def test_bad_page_values_are_400_on_every_list_route(
    server: RunningServer, account: Account, profile_id: str
) -> None:
    failures: list[str] = []
    for route in list_routes(server):
        path = _fill(route, profile_id)
        for name in PAGE_PARAMETERS:
            for value in BAD_VALUES:
                r = _get(server, account.api_key, path, {name: value})
                error: dict[str, Any] = (r.json().get("errors") or [{}])[0] if r.text else {}
                if (
                    r.status_code != 400
                    or error.get("code") != "10015"
                    or error.get("source") != {"parameter": name}
                ):
                    failures.append(f"{route} {name}={value!r}: {r.status_code} {r.text[:120]}")
    assert not failures, "\n".join(failures)


def test_the_largest_page_values_are_served(
    server: RunningServer, account: Account, profile_id: str
) -> None:
    for route in list_routes(server):
        path = _fill(route, profile_id)
        params = {"page[number]": str(MAX_PAGE_NUMBER), "page[size]": str(MAX_PAGE_SIZE)}
        r = _get(server, account.api_key, path, params)
        assert r.status_code == 200, f"{route}: {r.text}"
        assert r.json()["data"] == []
        assert r.json()["meta"]["page_number"] == MAX_PAGE_NUMBER


def test_the_sdk_gets_a_400_for_a_page_past_64_bits(client: Telnyx) -> None:
    with pytest.raises(telnyx.BadRequestError) as exc:
        client.messaging_profiles.list(page_number=2**64)
    assert exc.value.body["errors"][0]["source"] == {"parameter": "page[number]"}  # type: ignore[index]
    with pytest.raises(telnyx.BadRequestError):
        client.messaging_optouts.list(page_size=-1)


@pytest.mark.parametrize("value", ["9" * 30, "-1", "²", "x"])
def test_a_bad_count_filter_is_400(server: RunningServer, account: Account, value: str) -> None:
    r = _get(server, account.api_key, "/v2/number_orders", {"filter[phone_numbers_count]": value})
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["source"] == {"parameter": "filter[phone_numbers_count]"}


DATE_FILTERS = [
    ("/v2/messaging_optouts", "created_at[gte]"),
    ("/v2/webhook_deliveries", "filter[started_at][gte]"),
    ("/v2/number_orders", "filter[created_at][gt]"),
    ("/v2/messaging_profiles/{profile_id}/autoresp_configs", "updated_at[lte]"),
    ("/inbox/api/messages", "after"),
]
NO_UTC = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]


@pytest.mark.parametrize("value", NO_UTC)
def test_date_times_with_no_utc_equivalent_are_400(
    server: RunningServer, account: Account, profile_id: str, value: str
) -> None:
    for route, name in DATE_FILTERS:
        r = _get(server, account.api_key, _fill(route, profile_id), {name: value})
        assert r.status_code == 400, f"{route}: {r.text}"
        assert r.json()["errors"][0]["source"] == {"parameter": name}


@pytest.mark.parametrize("value", NO_UTC)
def test_a_send_at_with_no_utc_equivalent_is_refused(
    client: Telnyx, sender: Sender, value: str
) -> None:
    with pytest.raises(telnyx.APIStatusError) as exc:
        client.messages.schedule(from_=sender.number, to="+14155550100", text="x", send_at=value)  # type: ignore[arg-type]
    assert exc.value.status_code in (400, 422)
    assert exc.value.body["errors"][0]["source"] == {"pointer": "/send_at"}  # type: ignore[index]
