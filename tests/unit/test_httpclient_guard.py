"""The webhook client under the outbound guard, against real local listeners: a name is resolved once
per connection and the connection made to the checked address; a refused address is never
connected to; connection failures say nothing about the port; endless and slow answers end."""

from __future__ import annotations

import asyncio
import time

import pytest

from signalpost.kit.httpclient import (
    MAX_HEADER_BYTES,
    READ_LIMIT,
    ConnectError,
    HttpClient,
    HttpError,
)
from signalpost.kit.netguard import Blocked, OutboundGuard, parse_networks
from signalpost.webhooks.service import post
from tests.support.rawhttp import read_request
from tests.support.resolver import StubResolver
from tests.unit.test_httpclient import Handler, Server, keep_alive


def _guard(resolver: StubResolver, exempt: str | None = "127.0.0.1/32") -> OutboundGuard:
    """Enforcing; 127.0.0.1 exempt (the local listeners) unless `exempt` is None."""
    networks = parse_networks([exempt]) if exempt else ()
    return OutboundGuard(allow_private=False, allowed_networks=networks, resolver=resolver)


def _port(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def test_a_name_is_resolved_once_per_connection_and_sent_as_host() -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head, _ = await read_request(reader)
            seen.append(head)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    resolver = StubResolver({"hooks.test": ["127.0.0.1"]})

    async def go() -> list[int]:
        server = Server(handler)
        client = HttpClient(guard=_guard(resolver))
        async with server as base:
            port = _port(base)
            statuses = [
                (await client.post(f"http://hooks.test:{port}/h", b"x", {})).status
                for _ in range(3)
            ]
            # The name now points somewhere refused: the kept-alive connection (made to the
            # checked address) is still used, a new one is not made.
            resolver.set("hooks.test", "10.0.0.1")
            statuses.append((await client.post(f"http://hooks.test:{port}/h", b"x", {})).status)
        await client.aclose()
        assert server.connections == 1
        return statuses

    assert asyncio.run(go()) == [200] * 4
    assert resolver.lookups == ["hooks.test"]
    assert all(b"\r\nHost: hooks.test:" in head for head in seen)


@pytest.mark.parametrize(
    ("table", "url_host"),
    [
        ({"loop.test": ["127.0.0.1"]}, "loop.test"),
        ({"mixed.test": ["127.0.0.2", "127.0.0.1"]}, "mixed.test"),
        ({}, "127.0.0.1"),
        ({}, "[::ffff:127.0.0.1]"),
    ],
)
def test_a_refused_address_is_never_connected_to(
    table: dict[str, list[str]], url_host: str
) -> None:
    resolver = StubResolver(table)

    async def go() -> None:
        server = Server(keep_alive(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
        client = HttpClient(guard=_guard(resolver, exempt=None))
        async with server as base:
            with pytest.raises(Blocked):
                await client.post(f"http://{url_host}:{_port(base)}/h", b"x", {})
        await client.aclose()
        assert server.connections == 0

    asyncio.run(go())


def test_a_refused_connection_and_a_missing_name_look_the_same() -> None:
    resolver = StubResolver({"closed.test": ["127.0.0.1"]})

    async def go() -> tuple[str, str]:
        client = HttpClient(guard=_guard(resolver))
        with pytest.raises(ConnectError) as refused:
            await client.post("http://closed.test:9/h", b"x", {})
        with pytest.raises(ConnectError) as unknown:
            await client.post("http://unknown.test:9/h", b"x", {})
        await client.aclose()
        return str(refused.value), str(unknown.value)

    assert asyncio.run(go()) == ("could not connect", "could not connect")


def test_webhook_attempts_say_blocked_by_policy_or_a_generic_failure() -> None:
    resolver = StubResolver({"loop.test": ["127.0.0.1"], "closed.test": ["127.0.0.1"]})

    async def go() -> tuple[str | None, str | None]:
        blocked = await post(
            HttpClient(guard=_guard(resolver, exempt=None)), "http://loop.test:9/h", b"{}", {}, 1.0
        )
        refused = await post(
            HttpClient(guard=_guard(resolver)), "http://closed.test:9/", b"{}", {}, 1.0
        )
        return blocked.error, refused.error

    blocked, refused = asyncio.run(go())
    assert blocked == "blocked by policy: loop.test resolves to an address that is not public"
    assert refused == "connection failed: could not connect"


def _endless(chunk: bytes, pause: float) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        while True:
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
            if pause:
                await asyncio.sleep(pause)

    return handler


def test_an_endless_body_is_read_up_to_the_limit_then_given_up() -> None:
    async def go() -> tuple[int, int, float]:
        client = HttpClient()
        async with Server(_endless(b"x" * 16384, 0)) as base:
            t0 = time.monotonic()
            async with asyncio.timeout(5):
                response = await client.post(base, b"", {}, max_body=100)
            elapsed = time.monotonic() - t0
        await client.aclose()
        return response.status, len(response.body), elapsed

    status, kept, elapsed = asyncio.run(go())
    assert (status, kept) == (200, 100)
    assert elapsed < 2
    assert READ_LIMIT < 10 * 16384  # the body above is cut long before the deadline


def test_endless_headers_fail_the_request() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n")
        while True:
            writer.write(b"X-Pad: " + b"p" * 1000 + b"\r\n")
            await writer.drain()

    async def go() -> None:
        client = HttpClient()
        async with Server(handler) as base:
            with pytest.raises(HttpError, match="headers exceed"):
                async with asyncio.timeout(5):
                    await client.post(base, b"", {})
        await client.aclose()

    asyncio.run(go())
    assert MAX_HEADER_BYTES <= 65536


def test_a_slow_drip_is_cut_at_the_attempts_deadline() -> None:
    """A receiver that answers a byte at a time keeps each read short; the deadline is on the whole
    exchange."""

    async def go() -> tuple[str | None, float]:
        client = HttpClient()
        async with Server(_endless(b"x", 0.05)) as base:
            result = await post(client, base, b"{}", {}, 0.5)
        await client.aclose()
        return result.error, result.latency_ms

    error, latency_ms = asyncio.run(go())
    assert error == "timeout: no response within 0.5 s"
    assert 450 <= latency_ms < 1500
