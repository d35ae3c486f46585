"""One webhook attempt against in-memory transports: success, errors, timeouts, truncation."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from signalpost.webhooks.service import RESPONSE_BODY_LIMIT, AttemptResult, post


def _run(
    transport: httpx.MockTransport, timeout: float = 1.0, url: str = "http://r/hook"
) -> AttemptResult:
    async def go() -> AttemptResult:
        async with httpx.AsyncClient(transport=transport) as http:
            return await post(http, url, b'{"data":{}}', {"X-Test": "1"}, timeout)

    return asyncio.run(go())


def test_2xx_is_success_and_the_exact_body_is_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204, headers={"X-Reply": "yes"})

    result = _run(httpx.MockTransport(handler))
    assert result.ok and result.status_code == 204 and result.error is None
    assert result.response_body == ""
    assert ["x-reply", "yes"] in (result.response_headers or [])
    assert seen[0].content == b'{"data":{}}'
    assert seen[0].headers["x-test"] == "1"
    assert result.latency_ms >= 0
    assert result.finished_at >= result.started_at


@pytest.mark.parametrize("status", [199, 301, 404, 500, 503])
def test_other_statuses_are_failures_with_the_body_kept(status: int) -> None:
    result = _run(httpx.MockTransport(lambda r: httpx.Response(status, text="nope")))
    assert not result.ok
    assert result.status_code == status
    assert result.response_body == "nope"
    assert result.error is None


def test_response_body_is_truncated_to_2_kb() -> None:
    big = "é" * 5000  # 10 000 bytes
    result = _run(httpx.MockTransport(lambda r: httpx.Response(500, text=big)))
    assert result.response_body is not None
    assert len(result.response_body.encode()) <= RESPONSE_BODY_LIMIT + 3  # a cut character
    assert result.response_body.startswith("é" * 100)


def test_connection_errors_and_timeouts_are_failed_attempts_with_an_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    result = _run(httpx.MockTransport(refuse))
    assert not result.ok and result.status_code is None
    assert result.error is not None and "connection refused" in result.error

    def slow_read(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    result = _run(httpx.MockTransport(slow_read))
    assert not result.ok and result.error is not None and result.error.startswith("timeout")


def test_the_whole_exchange_is_bounded_by_the_timeout() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    result = _run(httpx.MockTransport(hang), timeout=0.05)
    assert not result.ok and result.error is not None and result.error.startswith("timeout")
    assert result.latency_ms < 2000


def test_a_malformed_url_is_a_failed_attempt_not_a_crash() -> None:
    result = _run(httpx.MockTransport(lambda r: httpx.Response(200)), url="not a url")
    assert not result.ok and result.error
