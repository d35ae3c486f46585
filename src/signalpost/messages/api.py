"""Routes of the message family (contract §5)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response
from starlette.types import Scope

from signalpost.accounts.deps import Ctx, CurrentOrg, authenticate
from signalpost.accounts.service import Organization
from signalpost.context import AppContext
from signalpost.kit.clock import utcnow
from signalpost.kit.db import UnitOfWork
from signalpost.kit.errors import ApiError
from signalpost.kit.fastlane import LaneHandler, is_json
from signalpost.kit.groupcommit import GroupCommit
from signalpost.kit.jsonio import JSONResponse
from signalpost.kit.urls import check_webhook_urls
from signalpost.messages import group, outbound, service
from signalpost.messages import repository as repo
from signalpost.messages.schemas import (
    AlphanumericSend,
    GroupMmsSend,
    LongCodeSend,
    MessageSend,
    NumberPoolSend,
    ShortCodeSend,
    message_payload,
    outbound_payload,
)
from signalpost.messages.senders import Endpoint, SendRequest
from signalpost.messages.whatsapp import send as whatsapp
from signalpost.messages.whatsapp import wire as whatsapp_wire
from signalpost.messages.whatsapp.models import WhatsappSend

router = APIRouter(tags=["messages"])

MAX_IDEMPOTENCY_KEY = 255  # the stored key's column
IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", max_length=MAX_IDEMPOTENCY_KEY)
]
Produce = Callable[[UnitOfWork], Awaitable[dict[str, Any]]]


async def respond_idempotently(
    ctx: AppContext, org_id: str, request: Request, key: str | None, produce: Produce
) -> JSONResponse:
    """Run `produce` once per Idempotency-Key: a repeat with the same body gets the first answer."""
    body = await request.body() if key else b""
    status, content = await idempotent(ctx, org_id, request.url.path, body, key, produce)
    return JSONResponse(content, status_code=status)


async def idempotent(
    ctx: AppContext, org_id: str, path: str, raw_body: bytes, key: str | None, produce: Produce
) -> tuple[int, dict[str, Any]]:
    """`produce`'s answer (status, body), or the stored first answer to the same Idempotency-Key."""
    if not key:
        async with ctx.db.transaction() as uow:
            return 200, await produce(uow)
    if len(key) > MAX_IDEMPOTENCY_KEY:
        raise ApiError(
            400,
            "10015",
            "Invalid parameter",
            f"Idempotency-Key may hold at most {MAX_IDEMPOTENCY_KEY} characters.",
            parameter="Idempotency-Key",
            should_retry=False,
        )
    digest = service.request_hash(path, raw_body)
    for attempt in range(2):
        try:
            async with ctx.db.transaction() as uow:
                record = await repo.idempotency_record(uow, org_id, key)
                now = utcnow()
                fresh_after = now - timedelta(seconds=ctx.settings.idempotency_ttl_seconds)
                if record is not None and record["created_at"] >= fresh_after:
                    if record["request_hash"] != digest:
                        raise ApiError(
                            422,
                            "10015",
                            "Idempotency key reused",
                            "This Idempotency-Key was used with a different request body.",
                            should_retry=False,
                        )
                    return int(record["status_code"]), dict(record["response"])
                if record is not None:
                    await repo.purge_idempotency(uow, org_id, key, fresh_after)
                body = await produce(uow)
                await repo.save_idempotency(
                    uow,
                    {
                        "organization_id": org_id,
                        "key": key,
                        "request_hash": digest,
                        "status_code": 200,
                        "response": body,
                        "created_at": now,
                    },
                )
            return 200, body
        except IntegrityError:
            # A concurrent request with the same key won; answer with its result.
            if attempt:
                raise
    raise AssertionError("unreachable")


_WEBHOOK_FIELDS = ("webhook_url", "webhook_failover_url")


def _check_webhooks(body: BaseModel) -> None:
    """A message's own webhook URLs are checked as a profile's are (kit.urls; 422, 10003)."""
    check_webhook_urls({n: getattr(body, n, None) for n in _WEBHOOK_FIELDS}, _WEBHOOK_FIELDS)


def _request(endpoint: Endpoint, body: Any) -> SendRequest:
    """The service's view of a send body (the body models differ in the fields they have)."""
    _check_webhooks(body)

    def field(name: str) -> Any:
        return getattr(body, name, None)

    return SendRequest(
        endpoint=endpoint,
        to=body.to,
        from_=field("from_"),
        messaging_profile_id=field("messaging_profile_id"),
        text=field("text"),
        subject=field("subject"),
        media_urls=list(field("media_urls") or []),
        type=field("type"),
        encoding=field("encoding") or "auto",
        auto_detect=bool(field("auto_detect")),
        use_profile_webhooks=field("use_profile_webhooks") is not False,
        webhook_url=field("webhook_url"),
        webhook_failover_url=field("webhook_failover_url"),
        send_at=field("send_at"),
        request=body.model_dump(by_alias=True, exclude_unset=True),
    )


AcceptItem = tuple[Organization, SendRequest]


def _accept_group(ctx: AppContext) -> GroupCommit[AcceptItem, dict[str, Any]]:
    """Concurrent sends share transactions (kit.groupcommit); one per application."""
    accept: GroupCommit[AcceptItem, dict[str, Any]] | None = ctx.extras.get("messages.accept")
    if accept is None:

        async def work(uow: UnitOfWork, item: AcceptItem) -> dict[str, Any]:
            row = await service.send(ctx, uow, item[0], item[1], defer=True)
            return {"data": outbound_payload(row)}

        accept = GroupCommit(ctx.db, work)
        ctx.extras["messages.accept"] = accept
    return accept


async def _accept(
    ctx: AppContext, org: Organization, path: str, raw: bytes, key: str | None, req: SendRequest
) -> tuple[int, dict[str, Any]]:
    """Accept one message: with an Idempotency-Key in a transaction of its own, else grouped."""
    problems = await outbound.check_urls(
        ctx,
        webhook_url=req.webhook_url,
        webhook_failover_url=req.webhook_failover_url,
        media_urls=req.media_urls,
        text=req.text,
    )
    if problems is not None:
        req = replace(req, link_problems=problems)
    if not key:
        return 200, await _accept_group(ctx).submit((org, req))

    async def produce(uow: UnitOfWork) -> dict[str, Any]:
        row = await service.send(ctx, uow, org, req)
        return {"data": outbound_payload(row)}

    return await idempotent(ctx, org.id, path, raw, key, produce)


async def _send(
    ctx: AppContext, org: CurrentOrg, request: Request, key: str | None, req: SendRequest
) -> JSONResponse:
    raw = await request.body() if key else b""
    status, content = await _accept(ctx, org, request.url.path, raw, key, req)
    return JSONResponse(content, status_code=status)


def _endpoint_of_messages(body: MessageSend) -> Endpoint:
    return "messages" if body.from_ or not body.messaging_profile_id else "number_pool"


# The plain send endpoints, served by the fast lane too (kit.fastlane): their body model and the
# endpoint they send as.
_LANES: dict[str, tuple[type[BaseModel], Callable[[Any], Endpoint]]] = {
    "/v2/messages": (MessageSend, _endpoint_of_messages),
    "/v2/messages/long_code": (LongCodeSend, lambda _: "long_code"),
    "/v2/messages/short_code": (ShortCodeSend, lambda _: "short_code"),
    "/v2/messages/alphanumeric_sender_id": (AlphanumericSend, lambda _: "alphanumeric"),
    "/v2/messages/number_pool": (NumberPoolSend, lambda _: "number_pool"),
}


def fast_routes(ctx: AppContext) -> dict[tuple[str, str], LaneHandler]:
    """The send endpoints without the framework's per-request cost; same answers as the routes."""

    def lane(model: type[BaseModel], endpoint_of: Callable[[Any], Endpoint]) -> LaneHandler:
        async def handle(scope: Scope, headers: Mapping[str, str], raw: bytes) -> Response | None:
            if not is_json(headers.get("content-type")):
                return None
            org = await authenticate(ctx, headers.get("authorization", ""))
            try:
                body = model.model_validate_json(raw)
            except ValidationError:
                return None  # the full application renders validation errors
            req = _request(endpoint_of(body), body)
            key = headers.get("idempotency-key")
            status, content = await _accept(ctx, org, scope["path"], raw, key, req)
            return JSONResponse(content, status_code=status)

        return handle

    return {("POST", path): lane(model, fn) for path, (model, fn) in _LANES.items()}


@router.post("/messages", summary="Send a message")
async def send_message(
    body: MessageSend,
    ctx: Ctx,
    org: CurrentOrg,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    return await _send(
        ctx, org, request, idempotency_key, _request(_endpoint_of_messages(body), body)
    )


@router.post("/messages/long_code", summary="Send a message from a long code")
async def send_long_code(
    body: LongCodeSend,
    ctx: Ctx,
    org: CurrentOrg,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    return await _send(ctx, org, request, idempotency_key, _request("long_code", body))


@router.post("/messages/short_code", summary="Send a message from a short code")
async def send_short_code(
    body: ShortCodeSend,
    ctx: Ctx,
    org: CurrentOrg,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    return await _send(ctx, org, request, idempotency_key, _request("short_code", body))


@router.post(
    "/messages/alphanumeric_sender_id", summary="Send a message with an alphanumeric sender ID"
)
async def send_alphanumeric(
    body: AlphanumericSend,
    ctx: Ctx,
    org: CurrentOrg,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    return await _send(ctx, org, request, idempotency_key, _request("alphanumeric", body))


@router.post("/messages/number_pool", summary="Send a message from a number pool")
async def send_number_pool(
    body: NumberPoolSend,
    ctx: Ctx,
    org: CurrentOrg,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    return await _send(ctx, org, request, idempotency_key, _request("number_pool", body))


@router.post("/messages/schedule", summary="Schedule a message")
async def schedule_message(
    body: MessageSend, ctx: Ctx, org: CurrentOrg, request: Request
) -> JSONResponse:
    if not body.send_at:
        raise ApiError(
            422,
            "10004",
            "Missing required parameter",
            "'send_at' is required to schedule a message.",
            pointer="/send_at",
            should_retry=False,
        )
    endpoint: Endpoint = (
        "schedule" if body.from_ or not body.messaging_profile_id else "number_pool"
    )
    return await _send(ctx, org, request, None, _request(endpoint, body))


@router.delete("/messages/{message_id}", summary="Cancel a scheduled message")
async def cancel_scheduled(message_id: str, ctx: Ctx, org: CurrentOrg) -> dict[str, Any]:
    """Cancel a scheduled message more than a minute before it is due; answers it unwrapped."""
    async with ctx.db.transaction() as uow:
        row = await service.cancel(uow, org, message_id)
    return outbound_payload(row, cancel_view=True)


@router.post("/messages/group_mms", summary="Send a group MMS")
async def send_group_mms(
    body: GroupMmsSend,
    ctx: Ctx,
    org: CurrentOrg,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """One message per recipient, sharing a group id: the first recipient's message id (group.py)."""
    _check_webhooks(body)
    problems = await outbound.check_urls(
        ctx,
        webhook_url=body.webhook_url,
        webhook_failover_url=body.webhook_failover_url,
        media_urls=body.media_urls or [],
        text=body.text,
    )

    async def produce(uow: UnitOfWork) -> dict[str, Any]:
        rows = await group.send(ctx, uow, org, body, link_problems=problems)
        return {"data": outbound_payload(rows[0])}

    return await respond_idempotently(ctx, org.id, request, idempotency_key, produce)


@router.get("/messages/group/{message_id}", summary="Retrieve the messages of a group MMS")
async def retrieve_group(message_id: str, ctx: Ctx, org: CurrentOrg) -> dict[str, Any]:
    async with ctx.db.reading() as uow:
        rows = await group.retrieve(uow, org, message_id)
    return {"data": [outbound_payload(r) for r in rows]}


@router.post("/messages/whatsapp", summary="Send a WhatsApp message")
async def send_whatsapp(
    body: WhatsappSend,
    ctx: Ctx,
    org: CurrentOrg,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """`whatsapp_message` is checked per its type, with a pointer to the bad field."""
    _check_webhooks(body)
    await outbound.check_urls(ctx, webhook_url=body.webhook_url)

    async def produce(uow: UnitOfWork) -> dict[str, Any]:
        row = await whatsapp.send(ctx, uow, org, body)
        return {"data": whatsapp_wire.send_response(row)}

    return await respond_idempotently(ctx, org.id, request, idempotency_key, produce)


@router.get("/messages/{message_id}", summary="Retrieve a message")
async def retrieve_message(message_id: str, ctx: Ctx, org: CurrentOrg) -> dict[str, Any]:
    async with ctx.db.reading() as uow:
        row = await service.retrieve(uow, org, message_id)
    return {"data": message_payload(row)}
