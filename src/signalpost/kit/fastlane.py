"""A fast lane in front of the application for a few hot routes (the send endpoints).

Going through the whole FastAPI stack — matching the path against every route, solving dependencies,
a dozen middleware layers — costs several times what accepting a message does. A lane handler is
picked by exact method and path, gets the raw body and headers, and either answers the request
itself or declines it (returns None): then the request goes through the full application unchanged,
its body replayed. Handlers decline everything but the plain path (a body that does not validate,
a content type that is not JSON, …), so those errors keep the full application's single rendering;
an `ApiError` a handler raises is rendered exactly as the application renders it.

The routes stay declared in the application as well: they document the API (OpenAPI) and serve
every request the lane declines. The lane wraps the application's whole middleware stack (see
`signalpost.app`), so it answers an unexpected error itself, as the application would: a 500 in the
error envelope, the exception logged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from signalpost.kit.errors import ApiError, answer_unexpected, render

# A handler gets the request's scope, its lower-cased headers and its body.
LaneHandler = Callable[[Scope, Mapping[str, str], bytes], Awaitable[Response | None]]

# Bodies larger than this go through the full application (and its own limit).
MAX_BODY = 1 << 20


def is_json(content_type: str | None) -> bool:
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    return ctype == "application/json" or ctype.endswith("+json")


class FastLane:
    """ASGI middleware serving `routes[(method, path)]` directly, everything else through `app`."""

    def __init__(self, app: ASGIApp, routes: Mapping[tuple[str, str], LaneHandler]) -> None:
        self.app = app
        self.routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            handler = self.routes.get((scope["method"], scope["path"]))
            if handler is not None:
                body, complete = await _read_body(receive)
                if body is None:
                    return  # the client went away before sending its request
                if complete:
                    headers = {
                        k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
                    }
                    try:
                        response = await handler(scope, headers, body)
                    except ApiError as exc:
                        response = render([exc])
                    except Exception as exc:
                        what = f"{scope['method']} {scope['path']}"
                        response = answer_unexpected(exc, what)
                    if response is not None:
                        await response(scope, receive, send)
                        return
                receive = _replay(body, complete, receive)
        await self.app(scope, receive, send)


async def _read_body(receive: Receive) -> tuple[bytes | None, bool]:
    """The body and whether it is all there (False: too large); None if the client went away."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None, False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if size > MAX_BODY:
            return b"".join(chunks), False


def _replay(body: bytes, complete: bool, receive: Receive) -> Receive:
    """A `receive` that hands out what was read first, then continues with the real one."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": not complete}
        return await receive()

    return replayed
