"""A small keep-alive HTTP/1.1 client for webhook POSTs.

Every message causes two webhook POSTs, and with a general-purpose client (aiohttp) the client side
of a POST costs more CPU than everything else the server does for the message. This one does only
what a webhook sender needs — a request with a body on a kept-alive connection, the response's
status, headers and the start of its body — on an asyncio protocol, and leaves the parsing of the
response to httptools (llhttp, the parser uvicorn uses for requests).

- Connections are kept per (scheme, host, port), at most `limit_per_host` at a time; a request
  waits for a free one. HTTPS uses the default certificate verification.
- A kept-alive connection the server closed meanwhile fails on first use: when that happens before
  any byte of a response arrived, the request is sent once more on a new connection.
- The caller bounds the whole exchange (`asyncio.timeout`); a cancelled request closes its
  connection, which cannot be reused with a response half read.
- Redirects are not followed; proxies are not supported.
- A response's headers may take `MAX_HEADER_BYTES`; its body is kept up to `max_body` bytes and
  read up to `READ_LIMIT` (or `max_body` if larger): a longer body is cut there and its connection
  closed, so an endless answer holds nothing beyond the caller's deadline.
- With an enforcing `OutboundGuard` (kit.netguard) the host is resolved once per new connection,
  every answer checked (`Blocked` when one is refused), and the connection made to a checked address
  (TLS still verifies the host name). Connection failures then say no more than "could not
  connect": whether a port is closed or filtered is not told.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple, cast
from urllib.parse import urlsplit

import httptools

from signalpost.kit.netguard import OutboundGuard, Unresolvable
from signalpost.kit.urls import ascii_host

READ_LIMIT = 65536  # body bytes read before the rest is given up (and the connection closed)
MAX_HEADER_BYTES = 65536


class HttpError(Exception):
    """The request could not be made or its response was not valid HTTP."""


class ConnectError(HttpError):
    """No connection to the server could be opened."""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]  # names lower-cased, in order
    body: bytes  # at most the `max_body` bytes asked for


class _Connection(asyncio.Protocol):
    """One connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[HttpResponse] | None = None
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._size = 0
        self._max_body = 0
        self._read_limit = READ_LIMIT
        self._header_bytes = 0
        self._received = False
        self._status = 0
        self._keep_alive = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not `isinstance(…, asyncio.Transport)`: uvloop's transports do not derive from it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(HttpError("the server switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(HttpError(f"invalid HTTP response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is None or self._waiter.done():
            return
        if self._status:  # a response whose body ends with the connection
            self._waiter.set_result(HttpResponse(self._status, self._headers, b"".join(self._body)))
        elif self._received:
            self._waiter.set_exception(HttpError("the server closed the connection mid-response"))
        else:
            self._waiter.set_exception(_Stale())

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > MAX_HEADER_BYTES:
            self._fail(HttpError(f"the response headers exceed {MAX_HEADER_BYTES} bytes"))
            return
        self._headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_body(self, chunk: bytes) -> None:
        room = self._max_body - self._size
        if room > 0:
            self._body.append(chunk[:room])
        self._size += len(chunk)
        if self._size > self._read_limit and self._waiter is not None and not self._waiter.done():
            # Enough read: the answer is what was kept, and the rest is not waited for.
            self._waiter.set_result(HttpResponse(self._status, self._headers, b"".join(self._body)))
            self.close()

    def on_message_complete(self) -> None:
        # Asked now: once the message is complete the parser resets and no longer knows.
        self._keep_alive = self._parser.should_keep_alive()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(HttpResponse(self._status, self._headers, b"".join(self._body)))

    # use

    def _fail(self, exc: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    @property
    def reusable(self) -> bool:
        return not self.closed and self._keep_alive

    async def exchange(self, request: bytes, max_body: int) -> HttpResponse:
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self._headers, self._body, self._size, self._header_bytes = [], [], 0, 0
        self._max_body, self._received, self._status = max_body, False, 0
        self._read_limit = max(max_body, READ_LIMIT)
        self._keep_alive = False
        self.transport.write(request)
        try:
            return await self._waiter
        finally:
            self._waiter = None


class _Stale(HttpError):
    """A kept-alive connection was closed by the server before it answered."""


class _Pool:
    def __init__(self, limit: int) -> None:
        self.slots = asyncio.Semaphore(limit)
        self.idle: deque[_Connection] = deque()


class HttpClient:
    """Keep-alive HTTP/1.1 POSTs (see the module docstring)."""

    def __init__(
        self,
        *,
        limit_per_host: int = 50,
        ssl_context: ssl.SSLContext | None = None,
        guard: OutboundGuard | None = None,
    ):
        self.limit_per_host = limit_per_host
        self._ssl = ssl_context
        self._guard = guard if guard is not None and guard.enforcing else None
        self._pools: dict[tuple[str, str, int], _Pool] = {}
        self.closed = False

    async def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        max_body: int = 65536,
    ) -> HttpResponse:
        """POST `body` to `url`; the response's body is cut to `max_body` bytes."""
        if self.closed:
            raise HttpError("the client is closed")
        scheme, host, port, host_header, target = destination(url)
        head = [f"POST {target} HTTP/1.1", f"Host: {host_header}", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in _OWN_HEADERS]
        request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body

        key = (scheme, host, port)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _Pool(self.limit_per_host)
        async with pool.slots:
            for attempt in range(2):
                conn, reused = await self._connection(pool, scheme, host, port)
                try:
                    response = await conn.exchange(request, max_body)
                except _Stale:
                    conn.close()
                    if reused and attempt == 0:
                        continue  # the server had closed the kept-alive connection: once more
                    raise HttpError("the server closed the connection without answering") from None
                except BaseException:
                    conn.close()  # a half-read response cannot be followed by another request
                    raise
                if conn.reusable:
                    pool.idle.append(conn)
                else:
                    conn.close()
                return response
        raise AssertionError("unreachable")

    async def _connection(
        self, pool: _Pool, scheme: str, host: str, port: int
    ) -> tuple[_Connection, bool]:
        """A kept-alive connection (and True), or a new one (and False)."""
        while pool.idle:
            conn = pool.idle.pop()
            if not conn.closed:
                return conn, True
        loop = asyncio.get_running_loop()
        context: ssl.SSLContext | None = None
        if scheme == "https":
            context = self._ssl or ssl.create_default_context()
        if self._guard is not None:
            return await self._guarded_connection(self._guard, context, host, port), False
        try:
            _, protocol = await loop.create_connection(
                _Connection, host, port, ssl=context, server_hostname=host if context else None
            )
        except OSError as exc:
            raise ConnectError(str(exc) or type(exc).__name__) from exc
        return protocol, False

    async def _guarded_connection(
        self, guard: OutboundGuard, context: ssl.SSLContext | None, host: str, port: int
    ) -> _Connection:
        """A connection to one of the checked addresses of `host` (`Blocked` passes through)."""
        try:
            addresses = await guard.addresses(host, port)
        except Unresolvable:
            raise ConnectError("could not connect") from None
        loop = asyncio.get_running_loop()
        for address in addresses:
            try:
                _, protocol = await loop.create_connection(
                    _Connection,
                    str(address),
                    port,
                    ssl=context,
                    server_hostname=host if context else None,
                )
            except OSError:
                continue
            return protocol
        raise ConnectError("could not connect")

    async def aclose(self) -> None:
        """Close every kept-alive connection."""
        self.closed = True
        for pool in self._pools.values():
            while pool.idle:
                pool.idle.pop().close()
        self._pools.clear()


# Headers the client writes itself.
class Destination(NamedTuple):
    """Where a request to a URL goes, and what it says on the request line and in `Host`."""

    scheme: str
    host: str
    port: int
    host_header: str
    target: str


@functools.lru_cache(maxsize=4096)
def destination(url: str) -> Destination:
    """The parts of an http(s) URL a request needs (a receiver's URL is posted to over and over,
    so each is parsed once); HttpError for anything else."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise HttpError(f"not an http(s) URL: {url!r}")
    try:
        host = ascii_host(parts.hostname)
        port = parts.port or (443 if scheme == "https" else 80)
    except (UnicodeError, ValueError) as exc:
        raise HttpError(f"not an http(s) URL: {url!r}") from exc
    default_port = port == (443 if scheme == "https" else 80)
    named = f"[{host}]" if ":" in host else host  # an IPv6 literal is written in brackets
    host_header = named if default_port else f"{named}:{port}"
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return Destination(scheme, host, port, host_header, target)


_OWN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
