"""Bounds on what a request may carry, checked before any route (or the fast lane) sees it.

`RequestGuard` wraps the whole application (see `signalpost.app`):

- headers: at most `max_headers` of them and `max_header_bytes` in all (431); a URL no longer
  than `max_header_bytes` (414);
- a NUL character in the path or a query value (400: PostgreSQL cannot store or compare it);
- bodies: at most `max_body_bytes` (413), refused from `Content-Length` before a byte is read, and
  for chunked bodies as soon as the bytes read pass the limit; all of it within `body_timeout`
  seconds (408); a refused body is not read on, so the answer closes the connection;
- JSON bodies: valid UTF-8, no NUL character and no lone UTF-16 surrogate in any string or key,
  nesting at most `MAX_JSON_DEPTH` deep, integers within 64 bits (400, with a pointer);
- an error that escapes the application after its answer has gone out (the framework's last
  handler re-raises it) is logged here, so the server ends the exchange cleanly: every 500 says
  `Connection: close` (`kit.errors.unexpected_error`), and the client is told before the
  connection is closed.

The JSON checks cost a substring scan on the usual body; a body is parsed here only when the scan
finds a `\\u0000` or surrogate escape, a long run of digits, or more brackets than the depth limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from signalpost.kit.errors import ApiError, render, unexpected_error

log = logging.getLogger("signalpost.limits")

MAX_JSON_DEPTH = 64
_INT64 = (-(1 << 63), (1 << 63) - 1)
# What makes a body worth parsing here: a `\u0000` or surrogate escape, a run of 19 digits (found
# as nines after every digit is mapped to one: cheaper than a regular expression), brackets.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_DIGITS_AS_NINES = bytes(57 if 48 <= b <= 57 else 32 for b in range(256))
_NINETEEN_NINES = b"9" * 19
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class RequestLimits:
    max_body_bytes: int = 1 << 20
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    body_timeout: float = 30.0


def _bad(
    code: str, title: str, detail: str, *, pointer: str | None = None, parameter: str | None = None
) -> ApiError:
    return ApiError(
        400, code, title, detail, pointer=pointer, parameter=parameter, should_retry=False
    )


def _closing(error: ApiError) -> ApiError:
    error.headers["connection"] = "close"
    error.should_retry = False
    return error


@dataclass(frozen=True)
class Head:
    """What the guard needs from a request's head, gathered in one pass over its headers."""

    problem: ApiError | None
    has_body: bool = False
    length: int | None = None  # Content-Length, when it is a number
    is_json: bool = False


def _too_many_headers(limits: RequestLimits) -> ApiError:
    detail = f"At most {limits.max_headers} request headers are accepted."
    return _closing(ApiError(431, "10015", "Request header fields too large", detail))


def read_head(scope: Scope, limits: RequestLimits) -> Head:
    """The request line and headers checked (431, 414, 400), and the body's framing."""
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    if len(headers) > limits.max_headers:
        return Head(_too_many_headers(limits))
    size = 0
    has_body = is_json = False
    length: int | None = None
    for name, value in headers:
        size += len(name) + len(value) + 4
        if name == b"content-length":
            length = int(value) if value.isdigit() else None
            has_body = has_body or value != b"0"
        elif name == b"transfer-encoding":
            has_body = True
        elif name == b"content-type":
            ctype: bytes = value.split(b";", 1)[0].strip().lower()
            is_json = ctype == b"application/json" or ctype.endswith(b"+json")
    if size > limits.max_header_bytes:
        return Head(
            _closing(
                ApiError(
                    431,
                    "10015",
                    "Request header fields too large",
                    f"The request headers may hold at most {limits.max_header_bytes} bytes.",
                )
            )
        )
    return Head(_line_problem(scope, limits), has_body, length, is_json)


def _line_problem(scope: Scope, limits: RequestLimits) -> ApiError | None:
    raw_path: bytes = scope.get("raw_path") or b""
    query: bytes = scope.get("query_string", b"")
    if len(raw_path) + len(query) > limits.max_header_bytes:
        return _closing(
            ApiError(
                414,
                "10015",
                "URI too long",
                f"The request URL may hold at most {limits.max_header_bytes} bytes.",
            )
        )
    if "\x00" in scope["path"]:
        return _bad("10015", "Bad request", "The request path contains a NUL character.")
    if b"%00" in query or b"\x00" in query:
        for key, text in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if "\x00" in key or "\x00" in text:
                parameter = key.replace("\x00", "")
                return _bad(
                    "10015",
                    "Invalid parameter",
                    f"{parameter}: NUL characters are not allowed.",
                    parameter=parameter,
                )
    return None


def _pointer(parts: tuple[str | int, ...]) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _walk(value: Any) -> Iterator[tuple[tuple[str | int, ...], Any, int]]:
    """Every value inside a parsed JSON document (keys as values too): (path, value, depth)."""
    stack: list[tuple[tuple[str | int, ...], Any, int]] = [((), value, 0)]
    while stack:
        path, item, depth = stack.pop()
        yield path, item, depth
        if isinstance(item, dict):
            for key, child in item.items():
                yield (*path, key), key, depth + 1
                stack.append(((*path, key), child, depth + 1))
        elif isinstance(item, list):
            stack.extend(((*path, i), child, depth + 1) for i, child in enumerate(item))


def _value_problem(path: tuple[str | int, ...], value: Any, depth: int) -> ApiError | None:
    where = _pointer(path)
    if isinstance(value, dict | list) and depth >= MAX_JSON_DEPTH:  # the root is level 1
        return _bad(
            "10015",
            "Bad request",
            f"The request body is nested more than {MAX_JSON_DEPTH} levels deep.",
            pointer=where,
        )
    if isinstance(value, str):
        if "\x00" in value:
            return _bad(
                "10015", "Invalid value", "NUL characters (\\u0000) are not allowed.", pointer=where
            )
        if _SURROGATE.search(value):
            return _bad(
                "10015",
                "Invalid value",
                "Strings must be valid Unicode: a lone UTF-16 surrogate escape is not allowed.",
                pointer=where,
            )
    elif (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not _INT64[0] <= value <= _INT64[1]
    ):
        return _bad(
            "10015", "Invalid value", "Integers must fit in 64 bits (signed).", pointer=where
        )
    return None


def json_problem(body: bytes) -> ApiError | None:
    """What is wrong with a JSON request body beyond its syntax (which the route checks)."""
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return _bad(
                "10023",
                "Invalid JSON",
                f"The request body is not valid UTF-8 (at byte {exc.start}).",
            )
    if b"\x00" in body:
        return _bad("10023", "Invalid JSON", "The request body contains a NUL byte.")
    escapes = b"\\u" in body and (b"\\u0000" in body or _SURROGATE_ESCAPE.search(body))
    if not (
        escapes
        or _NINETEEN_NINES in body.translate(_DIGITS_AS_NINES)
        or body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH
    ):
        return None
    try:
        document = json.loads(body)
    except RecursionError:
        return _bad(
            "10015",
            "Bad request",
            f"The request body is nested more than {MAX_JSON_DEPTH} levels deep.",
        )
    except ValueError:
        return None  # not JSON: the route answers that (10023)
    for path, value, depth in _walk(document):
        problem = _value_problem(path, value, depth)
        if problem is not None:
            return problem
    return None


class _TooLarge(Exception):
    pass


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, None if the client went away; `_TooLarge` past `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class _Deadlines:
    """Body reads that must end by a deadline. One timer sweeps them all about once a second (a
    timer per request would cost more than the rest of the guard does), cancelling those past
    their deadline; the reader turns that cancellation into TimeoutError."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.waiting: dict[asyncio.Task[Any], float] = {}
        self.expired: set[asyncio.Task[Any]] = set()
        self.sweeping = False

    async def read(self, receive: Receive, limit: int) -> bytes | None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        self.waiting[task] = loop.time() + self.timeout
        if not self.sweeping:
            self.sweeping = True
            loop.call_later(min(1.0, self.timeout), self._sweep, loop)
        try:
            return await _read_body(receive, limit)
        except asyncio.CancelledError:
            if task not in self.expired or task.uncancel():
                raise  # cancelled from outside as well
            raise TimeoutError from None
        finally:
            self.waiting.pop(task, None)
            self.expired.discard(task)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for task, deadline in list(self.waiting.items()):
            if deadline <= now:
                del self.waiting[task]
                self.expired.add(task)
                task.cancel()
        self.sweeping = bool(self.waiting)
        if self.sweeping:
            loop.call_later(min(1.0, self.timeout), self._sweep, loop)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


class RequestGuard:
    """ASGI middleware enforcing `RequestLimits` and the JSON body checks (module docstring)."""

    def __init__(self, app: ASGIApp, limits: RequestLimits) -> None:
        self.app = app
        self.limits = limits
        self.deadlines = _Deadlines(limits.body_timeout)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = read_head(scope, self.limits)
        problem = head.problem
        if problem is None and head.has_body:
            problem, receive, gone = await self._body(head, receive)
            if gone:
                return
        if problem is not None:
            await render([problem])(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        except Exception:
            # The framework's last handler answered 500 (with Connection: close) and re-raised:
            # logged here, so the server ends the exchange as the answer says.
            log.exception("%s %s failed", scope["method"], scope["path"])
            with contextlib.suppress(RuntimeError):  # an answer had begun: nothing to add
                await unexpected_error()(scope, receive, send)

    async def _body(self, head: Head, receive: Receive) -> tuple[ApiError | None, Receive, bool]:
        """(a problem with the body, the `receive` that replays it, whether the client left)."""
        limit = self.limits.max_body_bytes
        if head.length is not None and head.length > limit:
            return self._too_large(), receive, False
        try:
            body = await self.deadlines.read(receive, limit)
        except _TooLarge:
            return self._too_large(), receive, False
        except TimeoutError:
            too_slow = ApiError(
                408,
                "10008",
                "Request timeout",
                f"The request body did not arrive within {self.limits.body_timeout:g} seconds.",
            )
            return _closing(too_slow), receive, False
        if body is None:
            return None, receive, True
        problem = json_problem(body) if body and head.is_json else None
        return problem, _replay(body, receive), False

    def _too_large(self) -> ApiError:
        limit = self.limits.max_body_bytes
        detail = f"The request body may hold at most {limit} bytes."
        return _closing(ApiError(413, "10015", "Request entity too large", detail))
