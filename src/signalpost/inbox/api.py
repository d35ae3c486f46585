"""The web inbox at `/inbox`: server-rendered pages (the message list with search and filters, a
conversation per pair of our number and a handset, one message with its webhook attempts), kept
live by a server-sent event stream (`inbox.live`), and "reply as handset". `/` leads here.

The API key is asked for once and kept in an HttpOnly, SameSite=Strict cookie scoped to `/inbox`
(`inbox.auth`).
"""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from signalpost.accounts.deps import Ctx
from signalpost.inbox import live, service
from signalpost.inbox.auth import COOKIE, COOKIE_MAX_AGE, page_org, safe_next, to_login
from signalpost.inbox.views import HERE, STATUSES, Filters, error_text, page, to_query
from signalpost.kit.clock import iso, utcnow
from signalpost.kit.errors import ApiError, not_found

public_router = APIRouter(tags=["inbox"])
pages = APIRouter(prefix="/inbox", tags=["inbox"])

_STATIC = {"inbox.js": "text/javascript; charset=utf-8", "inbox.css": "text/css; charset=utf-8"}


@public_router.get("/", include_in_schema=False)
async def root() -> RedirectResponse:
    """The server's front door is the inbox."""
    return RedirectResponse("/inbox", status_code=307)


@pages.get("/login", include_in_schema=False)
async def login_form(next: str | None = None) -> HTMLResponse:
    return page("login.html", error=None, next=safe_next(next))


@pages.post("/login", include_in_schema=False)
async def login(request: Request, ctx: Ctx) -> Response:
    """Form post of the API key: on success the key is stored in the inbox cookie."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    key = (form.get("api_key") or [""])[0].strip()
    target = safe_next((form.get("next") or [""])[0])
    async with ctx.db.reading() as uow:
        org = await service.authenticate(uow, key)
    if org is None:
        error = "That API key is unknown or revoked." if key else "Enter an API key."
        return page("login.html", status=401, error=error, next=target)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        key,
        max_age=COOKIE_MAX_AGE,
        path="/inbox",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@pages.post("/logout", include_in_schema=False)
async def logout() -> Response:
    response = RedirectResponse("/inbox/login", status_code=303)
    response.delete_cookie(COOKIE, path="/inbox")
    return response


@pages.get("", include_in_schema=False)
async def inbox_page(request: Request, ctx: Ctx) -> Response:
    """The organization's messages, newest first, searched and filtered by the query string."""
    filters = Filters.from_params(request.query_params)
    before = request.query_params.get("before", "")
    error = None
    try:
        query = to_query(filters, before)
    except ApiError as exc:
        error, query, before = error_text(exc), to_query(Filters()), ""
    async with ctx.db.reading() as uow:
        org = await page_org(uow, request)
        if org is None:
            return to_login(request)
        found = await service.search(uow, org.id, query)
        numbers = await service.numbers(uow, org.id)
        profiles = await service.profiles(uow, org.id)
    return page(
        "inbox.html",
        status=400 if error else 200,
        org=org,
        found=found,
        cursor=iso(found.cursor),
        numbers=numbers,
        profiles=profiles,
        filters=filters,
        statuses=STATUSES,
        error=error,
        paged=bool(before),
    )


@pages.get("/messages/{message_id}", include_in_schema=False)
async def message_page(message_id: str, request: Request, ctx: Ctx) -> Response:
    """One message: its media, the API object, its webhook deliveries and their attempts."""
    cursor = iso(utcnow())
    async with ctx.db.reading() as uow:
        org = await page_org(uow, request)
        if org is None:
            return to_login(request)
        found = await service.detail(uow, org.id, message_id, org.public_key)
        numbers = await service.numbers(uow, org.id)
    if found is None:
        return page("not_found.html", status=404, org=org, message_id=message_id)
    return page("message.html", org=org, d=found, numbers=numbers, cursor=cursor)


@pages.get("/conversations", include_in_schema=False)
async def conversations_page(request: Request, ctx: Ctx) -> Response:
    """The recent conversations, the most recently active first (the page reloads its list when
    a message changes)."""
    cursor = iso(utcnow())
    async with ctx.db.reading() as uow:
        org = await page_org(uow, request)
        if org is None:
            return to_login(request)
        found = await service.conversations(uow, org.id)
    window = service.CONVERSATION_WINDOW
    return page("conversations.html", org=org, found=found, window=window, cursor=cursor)


@pages.get("/conversations/{ours}/{handset}", include_in_schema=False)
async def conversation_page(ours: str, handset: str, request: Request, ctx: Ctx) -> Response:
    """The messages between one of our numbers and a handset, oldest first, as a chat."""
    before = request.query_params.get("before", "")
    try:
        cursor = service.parse_before(before) if before else None
    except ValueError:
        cursor = None
    async with ctx.db.reading() as uow:
        org = await page_org(uow, request)
        if org is None:
            return to_login(request)
        found = await service.conversation(uow, org.id, ours, handset, cursor)
        numbers = await service.numbers(uow, org.id)
    return page(
        "conversation.html",
        org=org,
        ours=ours,
        handset=handset,
        found=found,
        items=list(reversed(found.items)),
        cursor=iso(found.cursor),
        numbers=numbers,
        paged=cursor is not None,
    )


@pages.get("/static/{name}", include_in_schema=False)
async def static_file(name: str) -> Response:
    media_type = _STATIC.get(name)
    if media_type is None:
        raise not_found("File")
    return Response(
        (HERE / "static" / name).read_bytes(),
        media_type=media_type,
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


public_router.include_router(pages)
public_router.include_router(live.router)
