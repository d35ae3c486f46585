"""The inbox's login: an API key kept in an HttpOnly, SameSite=Strict cookie scoped to `/inbox`
(the JSON routes also accept `Authorization: Bearer`)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse

from signalpost.accounts.deps import Ctx
from signalpost.accounts.service import Organization
from signalpost.inbox import service
from signalpost.kit.db import UnitOfWork
from signalpost.kit.errors import ApiError

COOKIE = "signalpost_inbox_key"
COOKIE_MAX_AGE = 7 * 24 * 3600


def unauthorized() -> ApiError:
    return ApiError(
        401,
        "10009",
        "Authentication failed",
        "Log in to the inbox (or send 'Authorization: Bearer <key>').",
        should_retry=False,
        headers={"WWW-Authenticate": "Bearer"},
    )


def request_key(request: Request, *, allow_bearer: bool) -> str | None:
    if allow_bearer:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and key.strip():
            return key.strip()
    return request.cookies.get(COOKIE)


async def page_org(uow: UnitOfWork, request: Request) -> Organization | None:
    return await service.authenticate(uow, request_key(request, allow_bearer=False))


async def api_org(request: Request, ctx: Ctx) -> Organization:
    """Dependency of the JSON routes: the organization of the cookie's (or Bearer) key, or 401."""
    async with ctx.db.reading() as uow:
        org = await service.authenticate(uow, request_key(request, allow_bearer=True))
    if org is None:
        raise unauthorized()
    return org


ApiOrg = Annotated[Organization, Depends(api_org)]


def safe_next(value: str | None) -> str:
    """Only paths inside the inbox are valid targets after logging in (no open redirect)."""
    if value and value.startswith("/inbox") and "//" not in value and "\\" not in value:
        return value
    return "/inbox"


def to_login(request: Request) -> RedirectResponse:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    response = RedirectResponse(f"/inbox/login?next={quote(target, safe='/')}", status_code=303)
    if COOKIE in request.cookies:
        response.delete_cookie(COOKIE, path="/inbox")
    return response
