"""The guarded httpx transport (kit.guarded_http) against real local listeners and a resolver stub:
names pinned to checked addresses, every redirect hop checked, a refused hop never connected to."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from signalpost.kit.guarded_http import GuardedTransport
from signalpost.kit.netguard import Blocked, OutboundGuard, parse_networks
from tests.support.rawhttp import read_request
from tests.support.resolver import StubResolver

Route = Callable[[str], bytes]  # request path -> raw response


@asynccontextmanager
async def listener(host: str, route: Route, seen: list[tuple[str, bytes]]) -> AsyncIterator[int]:
    """A raw HTTP listener on `host`; records (path, request head); yields its port."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head, _ = await read_request(reader)
            path = head.split(b" ", 2)[1].decode()
            seen.append((path, head))
            writer.write(route(path))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def redirect(location: str) -> bytes:
    return f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode()


def ok(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def client(resolver: StubResolver) -> httpx.AsyncClient:
    guard = OutboundGuard(
        allow_private=False, allowed_networks=parse_networks(["127.0.0.1/32"]), resolver=resolver
    )
    return httpx.AsyncClient(
        transport=GuardedTransport(guard), follow_redirects=True, max_redirects=3
    )


def run(go: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(go())  # type: ignore[arg-type]


def test_names_are_pinned_and_every_hop_is_checked() -> None:
    resolver = StubResolver({"media.test": ["127.0.0.1"], "inside.test": ["127.0.0.2"]})
    seen: list[tuple[str, bytes]] = []
    inside_seen: list[tuple[str, bytes]] = []

    async def go() -> None:
        async with listener("127.0.0.2", lambda p: ok(b"secret"), inside_seen) as inside_port:

            def route(path: str) -> bytes:
                hops = {
                    "/r1": "/r2",
                    "/r2": "/r3",
                    "/r3": "/file",
                    "/s1": "/s2",
                    "/s2": "/s3",
                    "/s3": "/s4",
                    "/s4": "/file",
                    "/to-inside": f"http://inside.test:{inside_port}/x",
                    "/to-literal": f"http://127.0.0.2:{inside_port}/x",
                    "/to-metadata": "http://169.254.169.254/latest/meta-data/",
                    "/to-ftp": "ftp://media.test/x",
                }
                return redirect(hops[path]) if path in hops else ok(b"file!")

            async with listener("127.0.0.1", route, seen) as port, client(resolver) as http:
                base = f"http://media.test:{port}"
                three = await http.get(f"{base}/r1")
                assert (three.status_code, three.content, len(three.history)) == (200, b"file!", 3)
                with pytest.raises(httpx.TooManyRedirects):
                    await http.get(f"{base}/s1")
                for path in ("/to-inside", "/to-literal", "/to-metadata"):
                    with pytest.raises(Blocked):
                        await http.get(f"{base}{path}")
                with pytest.raises(Blocked, match="ftp URLs are not allowed"):
                    await http.get(f"{base}/to-ftp")
                with pytest.raises(Blocked):
                    await http.get(f"http://inside.test:{inside_port}/x")

        assert inside_seen == []
        assert all(f"\r\nHost: media.test:{port}\r\n".encode() in head for _, head in seen)

    run(go)


def test_a_name_that_does_not_resolve_and_a_closed_port_look_the_same() -> None:
    resolver = StubResolver({"closed.test": ["127.0.0.1"]})

    async def go() -> None:
        async with client(resolver) as http:
            with pytest.raises(httpx.ConnectError) as closed:
                await http.get("http://closed.test:9/x")
            with pytest.raises(httpx.ConnectError) as missing:
                await http.get("http://missing.test/x")
        assert str(closed.value) == str(missing.value) == "could not connect"

    run(go)
