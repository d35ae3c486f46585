"""One webhook attempt against a real local server: success, errors, timeouts, truncation."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest

from signalpost.kit.httpclient import HttpClient
from signalpost.webhooks.service import RESPONSE_BODY_LIMIT, AttemptResult, post
from tests.support.rawhttp import read_request

Respond = Callable[[bytes, bytes], Awaitable[bytes]]  # (request head, body) -> raw response


def _response(status: int, body: bytes = b"", headers: str = "") -> bytes:
    return f"HTTP/1.1 {status} X\r\ncontent-length: {len(body)}\r\n{headers}\r\n".encode() + body


def _run(respond: Respond | None, timeout: float = 1.0, url: str | None = None) -> AttemptResult:
    """Start a raw HTTP server answering with `respond`, POST to it once, stop it."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert respond is not None
        try:
            head, body = await read_request(reader)
            writer.write(await respond(head, body))
            await writer.drain()
        finally:
            writer.close()

    async def go() -> AttemptResult:
        if respond is None:  # nothing listens on the port
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            target = url or f"http://127.0.0.1:{port}/hook"
            http = HttpClient()
            try:
                return await post(http, target, b'{"data":{}}', {"X-Test": "1"}, timeout)
            finally:
                await http.aclose()
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        http = HttpClient()
        try:
            return await post(
                http,
                url or f"http://127.0.0.1:{port}/hook",
                b'{"data":{}}',
                {"X-Test": "1"},
                timeout,
            )
        finally:
            await http.aclose()
            server.close()

    return asyncio.run(go())


def test_2xx_is_success_and_the_exact_body_is_sent() -> None:
    seen: list[tuple[bytes, bytes]] = []

    async def respond(head: bytes, body: bytes) -> bytes:
        seen.append((head, body))
        return _response(204, headers="X-Reply: yes\r\n")

    result = _run(respond)
    assert result.ok and result.status_code == 204 and result.error is None
    assert result.response_body == ""
    assert ["x-reply", "yes"] in (result.response_headers or [])
    head, body = seen[0]
    assert body == b'{"data":{}}'
    assert b"\r\nX-Test: 1\r\n" in head
    assert head.startswith(b"POST /hook HTTP/1.1")
    assert result.latency_ms >= 0
    assert result.finished_at >= result.started_at


@pytest.mark.parametrize("status", [301, 404, 500, 503])
def test_other_statuses_are_failures_with_the_body_kept(status: int) -> None:
    async def respond(head: bytes, body: bytes) -> bytes:
        return _response(
            status, b"nope", "Location: http://elsewhere/\r\n" if status == 301 else ""
        )

    result = _run(respond)
    assert not result.ok
    assert result.status_code == status
    assert result.response_body == "nope"
    assert result.error is None


def test_response_body_is_truncated_to_2_kb() -> None:
    big = ("é" * 5000).encode()  # 10 000 bytes

    async def respond(head: bytes, body: bytes) -> bytes:
        return _response(500, big)

    result = _run(respond)
    assert result.response_body is not None
    assert len(result.response_body.encode()) <= RESPONSE_BODY_LIMIT + 3  # a cut character
    assert result.response_body.startswith("é" * 100)


def test_connection_errors_are_failed_attempts_with_an_error() -> None:
    result = _run(None)
    assert not result.ok and result.status_code is None
    assert result.error is not None and result.error.startswith("connection failed")


def test_the_whole_exchange_is_bounded_by_the_timeout() -> None:
    async def hang(head: bytes, body: bytes) -> bytes:
        await asyncio.sleep(5)
        return _response(200)

    result = _run(hang, timeout=0.05)
    assert not result.ok and result.error is not None and result.error.startswith("timeout")
    assert result.latency_ms < 2000


def test_a_malformed_url_is_a_failed_attempt_not_a_crash() -> None:
    result = _run(None, url="not a url")
    assert not result.ok and result.error
