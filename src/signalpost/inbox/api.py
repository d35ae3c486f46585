"""The web inbox at `/inbox`: server-rendered pages, a JSON change feed polled by a small script, and
"reply as handset".

The API key is asked for once and kept in an HttpOnly, SameSite=Strict cookie scoped to `/inbox`;
every inbox request is authenticated with it (the JSON routes also accept `Authorization: Bearer`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from signalpost.accounts.deps import Ctx
from signalpost.accounts.service import Organization
from signalpost.inbox import service
from signalpost.kit.clock import iso, parse_datetime
from signalpost.kit.db import UnitOfWork
from signalpost.kit.errors import ApiError, bad_parameter, not_found
from signalpost.simulator import api as simulator_api
from signalpost.simulator.schemas import SimulatedInbound

public_router = APIRouter(prefix="/inbox", tags=["inbox"])

COOKIE = "signalpost_inbox_key"
COOKIE_MAX_AGE = 7 * 24 * 3600
POLL_INTERVAL_MS = 1500
_HERE = Path(__file__).parent
_STATIC = {"inbox.js": "text/javascript; charset=utf-8", "inbox.css": "text/css; charset=utf-8"}
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

templates = Environment(
    loader=FileSystemLoader(_HERE / "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters["json"] = service.pretty_json


def _clock(value: str | None) -> str:
    """`2024-05-01T12:03:04.567Z` → `12:03:04` (the full time goes in a title attribute)."""
    return value[11:19] if value else ""


def _when(value: str | None) -> str:
    """`2024-05-01T12:03:04.567Z` → `2024-05-01 12:03:04.567`."""
    return value.replace("T", " ").rstrip("Z") if value else ""


templates.filters["clock"] = _clock
templates.filters["when"] = _when


def _render(name: str, **values: Any) -> str:
    return templates.get_template(name).render(**values)


def _page(name: str, status: int = 200, **values: Any) -> HTMLResponse:
    return HTMLResponse(
        _render(name, poll_ms=POLL_INTERVAL_MS, **values),
        status_code=status,
        headers=_SECURITY_HEADERS,
    )


def _unauthorized() -> ApiError:
    return ApiError(
        401,
        "10009",
        "Authentication failed",
        "Log in to the inbox (or send 'Authorization: Bearer <key>').",
        should_retry=False,
        headers={"WWW-Authenticate": "Bearer"},
    )


def _request_key(request: Request, *, allow_bearer: bool) -> str | None:
    if allow_bearer:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and key.strip():
            return key.strip()
    return request.cookies.get(COOKIE)


async def _page_org(uow: UnitOfWork, request: Request) -> Organization | None:
    return await service.authenticate(uow, _request_key(request, allow_bearer=False))


async def api_org(request: Request, ctx: Ctx) -> Organization:
    """Dependency of the JSON routes: the organization of the cookie's (or Bearer) key, or 401."""
    async with ctx.db.transaction() as uow:
        org = await service.authenticate(uow, _request_key(request, allow_bearer=True))
    if org is None:
        raise _unauthorized()
    return org


ApiOrg = Annotated[Organization, Depends(api_org)]


def _safe_next(value: str | None) -> str:
    """Only paths inside the inbox are valid targets after logging in (no open redirect)."""
    if value and value.startswith("/inbox") and "//" not in value and "\\" not in value:
        return value
    return "/inbox"


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path
    response = RedirectResponse(f"/inbox/login?next={quote(target, safe='/')}", status_code=303)
    if COOKIE in request.cookies:
        response.delete_cookie(COOKIE, path="/inbox")
    return response


# --- pages -----------------------------------------------------------------------------------


@public_router.get("/login", include_in_schema=False)
async def login_form(next: str | None = None) -> HTMLResponse:
    return _page("login.html", error=None, next=_safe_next(next))


@public_router.post("/login", include_in_schema=False)
async def login(request: Request, ctx: Ctx) -> Response:
    """Form post of the API key: on success the key is stored in the inbox cookie."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    key = (form.get("api_key") or [""])[0].strip()
    target = _safe_next((form.get("next") or [""])[0])
    async with ctx.db.transaction() as uow:
        org = await service.authenticate(uow, key)
    if org is None:
        error = "That API key is unknown or revoked." if key else "Enter an API key."
        return _page("login.html", status=401, error=error, next=target)
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


@public_router.post("/logout", include_in_schema=False)
async def logout() -> Response:
    response = RedirectResponse("/inbox/login", status_code=303)
    response.delete_cookie(COOKIE, path="/inbox")
    return response


@public_router.get("", include_in_schema=False)
async def inbox_page(request: Request, ctx: Ctx) -> Response:
    """The organization's recent messages, updated live by `inbox.js`."""
    async with ctx.db.transaction() as uow:
        org = await _page_org(uow, request)
        if org is None:
            return _to_login(request)
        feed = await service.feed(uow, org.id, None)
        numbers = await service.numbers(uow, org.id)
    return _page("inbox.html", org=org, feed=feed, cursor=iso(feed.cursor), numbers=numbers)


@public_router.get("/messages/{message_id}", include_in_schema=False)
async def message_page(message_id: str, request: Request, ctx: Ctx) -> Response:
    """One message: the API object, its webhook deliveries and their attempts."""
    async with ctx.db.transaction() as uow:
        org = await _page_org(uow, request)
        if org is None:
            return _to_login(request)
        found = await service.detail(uow, org.id, message_id)
        numbers = await service.numbers(uow, org.id)
    if found is None:
        return _page("not_found.html", status=404, org=org, message_id=message_id)
    return _page("message.html", org=org, d=found, numbers=numbers)


@public_router.get("/static/{name}", include_in_schema=False)
async def static_file(name: str) -> Response:
    media_type = _STATIC.get(name)
    if media_type is None:
        raise not_found("File")
    return Response(
        (_HERE / "static" / name).read_bytes(),
        media_type=media_type,
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


# --- JSON for the page's script ----------------------------------------------------------------

_API_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No inbox cookie or Bearer key, or the key is unknown (code 10009)."},
}


@public_router.get(
    "/api/messages", summary="Inbox change feed: recent messages, or those changed since a cursor"
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
    (a change may be reported twice; replace by id).
    """
    since = None
    if after:
        try:
            since = parse_datetime(after)
        except ValueError:
            raise bad_parameter("after", "after must be a cursor from meta.cursor.") from None
    async with ctx.db.transaction() as uow:
        result = await service.feed(uow, org.id, since)
    data = [{**item, "html": _render("_row.html", m=item)} for item in result.items]
    return {"data": data, "meta": {"cursor": iso(result.cursor)}}


@public_router.get(
    "/api/messages/{message_id}",
    summary="Inbox message detail: the message object and its webhook deliveries",
    responses={**_API_ERRORS, 404: {"description": "No such message in this organization."}},
)
async def message_detail(message_id: str, org: ApiOrg, ctx: Ctx) -> dict[str, Any]:
    async with ctx.db.transaction() as uow:
        found = await service.detail(uow, org.id, message_id)
    if found is None:
        raise not_found("Message")
    return {
        "data": {
            "summary": found.summary,
            "message": found.payload,
            "webhooks": found.deliveries,
            "html": _render("_detail.html", d=found),
        }
    }


@public_router.post(
    "/api/reply",
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
