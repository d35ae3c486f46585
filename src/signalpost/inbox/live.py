"""The inbox's JSON routes: a server-sent event stream of changes (the pages' live updates), the
change feed and message detail as JSON, "reply as handset" and "redeliver a webhook".

The stream (`GET /inbox/api/events`) checks the database for changes every `STREAM_INTERVAL`
seconds on the server (three index probes) and sends an event only when something the page shows
changed; the page itself never polls. Each event carries its cursor as the SSE id, so a browser
that reconnects (`Last-Event-ID`) misses nothing. A stream ends after `STREAM_LIFETIME` seconds and
the browser reconnects at once, so no stream holds up a server that is shutting down for long.
Every `KEY_CHECK_SECONDS` it looks its key up again: once the key is revoked the stream sends a
`logout` event and ends, instead of living on until its lifetime ends; the browser's reconnection
then gets 401 and the page goes to the login.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from signalpost.accounts.deps import Ctx
from signalpost.inbox import service
from signalpost.inbox.auth import ApiOrg, request_key
from signalpost.inbox.views import Filters, render, to_query
from signalpost.kit.clock import iso, parse_datetime, utcnow
from signalpost.kit.errors import bad_parameter, not_found
from signalpost.kit.jsonio import dumps
from signalpost.simulator import api as simulator_api
from signalpost.simulator.schemas import SimulatedInbound
from signalpost.webhooks import redeliver as redelivery

router = APIRouter(prefix="/inbox/api", tags=["inbox"])

STREAM_INTERVAL = 0.5
STREAM_LIFETIME = 300.0
RECONNECT_MS = 1000
PING_SECONDS = 15
KEY_CHECK_SECONDS = 5.0

_API_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No inbox cookie or Bearer key, or the key is unknown (code 10009)."},
}


def _cursor(name: str, value: str) -> Any:
    try:
        return parse_datetime(value)
    except ValueError:
        raise bad_parameter(name, f"{name} must be a cursor from meta.cursor.") from None


def _row_html(item: dict[str, Any], view: str) -> str:
    return render("_bubble.html" if view == "conversation" else "_row.html", m=item)


_SUMMARIES = {
    "type": "object",
    "required": ["data", "meta"],
    "properties": {
        "data": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
        "meta": {"type": "object", "properties": {"cursor": {"type": "string"}}},
    },
}


@router.get(
    "/messages",
    summary="Inbox change feed: recent messages, or those changed since a cursor",
    responses={
        **_API_ERRORS,
        200: {
            "description": "Message summaries and the cursor to ask again with.",
            "content": {"application/json": {"schema": _SUMMARIES}},
        },
        400: {"description": "A bad cursor (10015)."},
    },
)
async def feed(
    org: ApiOrg,
    ctx: Ctx,
    after: Annotated[
        str | None,
        Query(
            description="The `meta.cursor` of the previous answer; omit for the newest messages."
        ),
    ] = None,
) -> dict[str, Any]:
    """Each item is a message summary with its webhook counts and `html`, its row in the page.

    With `after`, the answer holds the messages whose row or webhook deliveries changed since then
    (a change may be reported twice; replace by id). Pages use `GET /inbox/api/events` instead.
    """
    since = _cursor("after", after) if after else None
    async with ctx.db.reading() as uow:
        result = await service.feed(uow, org.id, since)
    data = [{**item, "html": _row_html(item, "list")} for item in result.items]
    return {"data": data, "meta": {"cursor": iso(result.cursor)}}


def _watch(request: Request, message: str | None, ours: str | None, handset: str | None) -> Any:
    if message:
        return "message", service.Watch(message_id=message)
    if ours or handset:
        if not (ours and handset):
            raise bad_parameter("handset", "ours and handset go together (a conversation).")
        return "conversation", service.Watch(conversation=(ours, handset))
    query = to_query(Filters.from_params(request.query_params))
    return "list", service.Watch(query=query)


@router.get(
    "/events",
    response_class=EventSourceResponse,
    summary="Inbox live updates: a server-sent event stream of changed messages",
    responses={
        **_API_ERRORS,
        200: {
            "description": "A stream of `ready`, `messages` and `message` events.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        400: {"description": "A bad filter or cursor (10015)."},
    },
)
async def events(
    request: Request,
    org: ApiOrg,
    ctx: Ctx,
    after: Annotated[str | None, Query(description="Report changes since this cursor.")] = None,
    message: Annotated[str | None, Query(description="Watch this message only.")] = None,
    ours: Annotated[str | None, Query(description="Watch a conversation: our number.")] = None,
    handset: Annotated[str | None, Query(description="... and the handset's.")] = None,
) -> EventSourceResponse:
    """`text/event-stream`. The list's filters (`q`, `number`, `direction`, `status`, `profile`,
    `since`, `until`) narrow what is reported. Events: `messages` (JSON `{"items": [summary with
    html]}`) for a list or conversation, `message` (JSON `{"html"}`, the detail) for one message.
    """
    view, watch = _watch(request, message, ours, handset)
    resume = request.headers.get("last-event-id") or after
    since = _cursor("after", resume) if resume else utcnow()
    key = request_key(request, allow_bearer=True) or ""
    return EventSourceResponse(
        _stream(ctx, key, org.id, org.public_key, view, watch, since),
        ping=PING_SECONDS,
        headers={"X-Content-Type-Options": "nosniff"},
    )


async def _stream(
    ctx: Any,
    key: str,
    org_id: str,
    public_key: str,
    view: str,
    watch: service.Watch,
    since: Any,
) -> AsyncIterator[ServerSentEvent]:
    yield ServerSentEvent(event="ready", data="{}", id=iso(since), retry=RECONNECT_MS)
    ends = time.monotonic() + STREAM_LIFETIME
    key_checked = time.monotonic()
    while time.monotonic() < ends:
        await asyncio.sleep(STREAM_INTERVAL)
        revoked = False
        async with ctx.db.reading() as uow:
            if time.monotonic() - key_checked >= KEY_CHECK_SECONDS:
                key_checked = time.monotonic()
                org = await service.authenticate(uow, key)
                revoked = org is None or org.id != org_id
            changed = await service.changes(uow, org_id, since, watch)
            detail = None
            if view == "message" and changed.items and watch.message_id:
                detail = await service.detail(uow, org_id, watch.message_id, public_key)
        if revoked:
            yield ServerSentEvent(event="logout", data="{}")
            return
        since = changed.cursor
        if detail is not None:
            html = render("_detail.html", d=detail)
            yield ServerSentEvent(
                event="message", data=dumps({"html": html}).decode(), id=iso(since)
            )
        elif changed.items and view != "message":
            items = [{**i, "html": _row_html(i, view)} for i in changed.items]
            data = dumps({"items": items}).decode()
            yield ServerSentEvent(event="messages", data=data, id=iso(since))


@router.get(
    "/messages/{message_id}",
    summary="Inbox message detail: the message object and its webhook deliveries",
    responses={**_API_ERRORS, 404: {"description": "No such message in this organization."}},
)
async def message_detail(message_id: str, org: ApiOrg, ctx: Ctx) -> dict[str, Any]:
    async with ctx.db.reading() as uow:
        found = await service.detail(uow, org.id, message_id, org.public_key)
    if found is None:
        raise not_found("Message")
    return {
        "data": {
            "summary": found.summary,
            "message": found.payload,
            "webhooks": found.deliveries,
            "html": render("_detail.html", d=found),
        }
    }


@router.post(
    "/reply",
    summary="Reply as a handset (the same as POST /simulator/inbound, with the inbox login)",
    responses={
        **_API_ERRORS,
        400: {"description": "No content (40316)."},
        422: {"description": "'from' or 'to' is not a +E.164 number or short code (10015)."},
    },
)
async def reply(body: SimulatedInbound, org: ApiOrg, ctx: Ctx) -> dict[str, Any]:
    """The key lives in an HttpOnly cookie the page's script cannot read, so the form posts here
    and this runs the handler of `POST /simulator/inbound` for the logged-in organization."""
    result: dict[str, Any] = await simulator_api.post_inbound(body, ctx, org)
    return result


@router.post(
    "/webhooks/{delivery_id}/redeliver",
    summary="Send a webhook event again (as POST /v2/webhook_deliveries/{id}/redeliver)",
    responses={**_API_ERRORS, 404: {"description": "No such delivery in this organization."}},
)
async def redeliver(delivery_id: str, org: ApiOrg, ctx: Ctx) -> dict[str, Any]:
    """Answers the new attempt's outcome and the message's detail, re-rendered."""
    found = await redelivery.redeliver(ctx, org.id, delivery_id)
    if found is None:
        raise not_found("Webhook delivery")
    event, attempts = found
    newest = attempts[0]
    html = None
    if event["message_id"] is not None:
        async with ctx.db.reading() as uow:
            detail = await service.detail(uow, org.id, event["message_id"], org.public_key)
        html = render("_detail.html", d=detail) if detail is not None else None
    return {
        "data": {
            "id": event["id"],
            "status_code": newest["status_code"],
            "error": newest["error"],
            "ok": newest["status_code"] is not None and 200 <= newest["status_code"] < 300,
            "html": html,
        }
    }
