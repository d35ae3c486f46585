"""API rate limits per API key: 429 with code 10011 and `Retry-After` over the limit (on the fast
lane's send endpoint too), other keys unaffected, the SDK retrying by itself, and on PostgreSQL one
limit across two server processes sharing the database."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import telnyx

from tests.conftest import Account, create_pg_database, drop_pg_database, sdk_client
from tests.conftest import test_settings as make_settings
from tests.support.server import RunningServer


@pytest.fixture(scope="module")
def settings_overrides() -> dict[str, Any]:
    return {"api_rate_limit": 2.0, "api_rate_burst": 3}


def _get(server: RunningServer, key: str) -> httpx.Response:
    return httpx.get(
        f"{server.base_url}/v2/messaging_profiles", headers={"Authorization": f"Bearer {key}"}
    )


def test_over_the_limit_gets_429_with_retry_after(
    server: RunningServer, account: Account, other_account: Account
) -> None:
    answers = [_get(server, account.api_key) for _ in range(8)]
    codes = [r.status_code for r in answers]
    assert codes[:3] == [200, 200, 200], codes
    refused = [r for r in answers if r.status_code == 429]
    assert refused, codes
    r = refused[0]
    assert r.json()["errors"][0]["code"] == "10011"
    assert int(r.headers["retry-after"]) >= 1
    # Another key has its own budget.
    assert _get(server, other_account.api_key).status_code == 200
    # An unknown key is refused as unknown (401), not counted.
    assert _get(server, "KEYunknown").status_code == 401


def test_the_send_endpoint_on_the_fast_lane_is_limited(
    server: RunningServer, account: Account
) -> None:
    assert server.settings.fast_lane
    headers = {"Authorization": f"Bearer {account.api_key}"}
    body = {"from": "+13125550100", "to": "+14156660100", "text": "x"}
    answers = [
        httpx.post(f"{server.base_url}/v2/messages", json=body, headers=headers) for _ in range(8)
    ]
    codes = [r.status_code for r in answers]
    assert 429 in codes and codes.index(429) >= 3, codes
    refused = answers[codes.index(429)]
    assert refused.json()["errors"][0]["code"] == "10011"
    assert int(refused.headers["retry-after"]) >= 1


def test_the_sdk_waits_and_retries_by_itself(server: RunningServer, account: Account) -> None:
    strict = sdk_client(server, account.api_key)  # max_retries=0
    while True:
        try:
            strict.messaging_profiles.list()
        except telnyx.RateLimitError as exc:
            assert exc.status_code == 429
            break
    patient = strict.with_options(max_retries=3)
    started = time.monotonic()
    page = patient.messaging_profiles.list()
    assert page.data is not None
    assert time.monotonic() - started >= 0.5  # it waited for Retry-After before succeeding


@pytest.fixture
def two_servers() -> Iterator[tuple[RunningServer, RunningServer]]:
    url, name = create_pg_database()
    # One request per 20 s after a burst of 2: a third one fits only 20 s after the first two.
    limits = {"api_rate_limit": 0.05, "api_rate_burst": 2, "api_key": "KEYsharedlimit0123456789"}
    first = RunningServer(make_settings(url, **limits)).start()
    second = RunningServer(make_settings(url, **limits)).start()
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()
        drop_pg_database(name)


@pytest.mark.postgres
def test_one_limit_across_two_processes_on_postgresql(
    two_servers: tuple[RunningServer, RunningServer],
) -> None:
    first, second = two_servers
    key = "KEYsharedlimit0123456789"
    started = time.monotonic()
    codes = [_get(first if i % 2 == 0 else second, key).status_code for i in range(6)]
    assert time.monotonic() - started < 19
    # Each process on its own would have let 2 through (4 in all).
    assert codes.count(200) == 2, codes
    assert codes.count(429) == 4, codes
