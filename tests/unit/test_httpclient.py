"""The webhook HTTP client against real local servers, on asyncio's loop and on uvloop (which
`serve` runs on): kept-alive connections, a connection the server closed meanwhile, chunked and
close-delimited bodies, the body limit, the per-host limit and cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest
import uvloop

from signalpost.kit.httpclient import ConnectError, HttpClient, HttpError, destination
from tests.support.rawhttp import read_request

T = TypeVar("T")
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

LOOPS = ["asyncio", "uvloop"]


def run(loop_kind: str, coro: Coroutine[Any, Any, T]) -> T:
    if loop_kind == "uvloop":
        return uvloop.run(coro)
    return asyncio.run(coro)


class Server:
    """A raw HTTP server counting its connections; `handler` answers each connection."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


def keep_alive(response: bytes) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(response)
            await writer.drain()

    return handler


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_requests_share_a_kept_alive_connection(loop_kind: str) -> None:
    seen: list[tuple[bytes, bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            seen.append(await read_request(reader))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nok")
            await writer.drain()

    async def go() -> list[Any]:
        server = Server(handler)
        client = HttpClient()
        async with server as base:
            answers = [
                await client.post(f"{base}/hook?x=1", b"body%d" % i, {"X-Test": "1"})
                for i in range(3)
            ]
        await client.aclose()
        return [server.connections, answers]

    connections, answers = run(loop_kind, go())
    assert connections == 1
    assert [(a.status, a.body) for a in answers] == [(200, b"ok")] * 3
    assert ("x-a", "b") in answers[0].headers
    head, body = seen[2]
    assert head.startswith(b"POST /hook?x=1 HTTP/1.1\r\n")
    assert b"\r\nX-Test: 1\r\n" in head and b"\r\nContent-Length: 5\r\n" in head
    assert body == b"body2"


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_a_connection_the_server_closed_is_replaced_once(loop_kind: str) -> None:
    """The server answers one request per connection but says keep-alive: the next POST on the
    stale connection fails before any answer, and is sent again on a new connection."""

    async def one_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()

    async def go() -> tuple[int, list[int]]:
        server = Server(one_then_close)
        client = HttpClient()
        async with server as base:
            statuses = []
            for _ in range(3):
                statuses.append((await client.post(base, b"x", {})).status)
                await asyncio.sleep(0.05)  # the close reaches the client first… or not
        await client.aclose()
        return server.connections, statuses

    connections, statuses = run(loop_kind, go())
    assert statuses == [204, 204, 204]
    assert connections == 3


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_chunked_close_delimited_and_limited_bodies(loop_kind: str) -> None:
    chunked = (
        b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )

    async def close_delimited(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
        await writer.drain()

    async def go() -> list[Any]:
        client = HttpClient()
        out = []
        async with Server(keep_alive(chunked)) as base:
            out.append(await client.post(base, b"", {}))
            out.append(await client.post(base, b"", {}, max_body=3))
        async with Server(close_delimited) as base:
            out.append(await client.post(base, b"", {}))
        await client.aclose()
        return out

    full, cut, until_close = run(loop_kind, go())
    assert (full.status, full.body) == (500, b"hello world")
    assert (cut.status, cut.body) == (500, b"hel")
    assert (until_close.status, until_close.body) == (200, b"until the end")


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_errors(loop_kind: str) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SPLAT\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.5)

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async def go() -> None:
        client = HttpClient()
        server = Server(silent)
        async with Server(garbage) as base:
            with pytest.raises(HttpError):
                await client.post(base, b"", {})
        async with server as base:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.1):
                    await client.post(base, b"", {})
            # The cancelled exchange's connection is not reused: a new request opens another.
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.1):
                    await client.post(base, b"", {})
        assert server.connections == 2
        with pytest.raises(ConnectError):
            await client.post("http://127.0.0.1:9/", b"", {})
        with pytest.raises(HttpError):
            await client.post("ftp://example.com/", b"", {})
        await client.aclose()

    run(loop_kind, go())


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_at_most_limit_per_host_connections(loop_kind: str) -> None:
    active = 0
    peak = 0

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal active, peak
        while True:
            await read_request(reader)
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.02)
            active -= 1
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()

    async def go() -> list[int]:
        client = HttpClient(limit_per_host=3)
        async with Server(slow) as base:
            answers = await asyncio.gather(*(client.post(base, b"", {}) for _ in range(12)))
        await client.aclose()
        return [a.status for a in answers]

    assert run(loop_kind, go()) == [200] * 12
    assert peak == 3


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://example.com/hooks", ("http", "example.com", 80, "example.com", "/hooks")),
        ("https://Example.com", ("https", "example.com", 443, "example.com", "/")),
        ("http://127.0.0.1:8080/h?x=1", ("http", "127.0.0.1", 8080, "127.0.0.1:8080", "/h?x=1")),
        ("http://[::1]:9000/h", ("http", "::1", 9000, "[::1]:9000", "/h")),
        ("http://[::1]/h", ("http", "::1", 80, "[::1]", "/h")),
        # internationalized names go out in their xn-- form (resolver, TLS, Host)
        (
            "http://Bücher.example:8080/h",
            ("http", "xn--bcher-kva.example", 8080, "xn--bcher-kva.example:8080", "/h"),
        ),
        (
            "https://пример.рф/",
            ("https", "xn--e1afmkfd.xn--p1ai", 443, "xn--e1afmkfd.xn--p1ai", "/"),
        ),
    ],
)
def test_destination(url: str, expected: tuple[str, str, int, str, str]) -> None:
    assert tuple(destination(url)) == expected


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "http:///nohost",
        "http://h:99999/",
        "x",
        "http://a..b/",  # an empty label: no IDNA form
        f"http://{'ü' * 64}.example/",  # a label too long
    ],
)
def test_destination_of_what_is_no_http_url(url: str) -> None:
    with pytest.raises(HttpError):
        destination(url)
