"""Link domains (`GET /v2/messaging_url_domains`), the short-link redirect, and click analytics.

Where short links are served (so that they never shadow another route):
- `GET /l/{prefix}{code}` on the server's own host: a fixed mount.
- `GET /{prefix}{code}` on a configured link domain: `LinkHostRoute` takes a GET only when the
  request's `Host` is not one of the server's own names and no other route of any feature matches
  the path fully (it answers as a *partial* match, which the router uses only as a last resort).
  Paths under `/v2` are never taken. On the server's own host unknown paths keep their usual 404.
A short link resolves by its code (and prefix) whatever the host it arrives on, so a proxy that
rewrites `Host` does not break links; the code is unguessable.
"""

from __future__ import annotations

from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, Response
from starlette.routing import Match
from starlette.types import Scope

from signalpost.accounts.deps import Ctx, CurrentOrg
from signalpost.context import AppContext, outbound_guard
from signalpost.kit.errors import bad_parameter, not_found
from signalpost.kit.pagination import Page, page_params
from signalpost.links import detect, service
from signalpost.links import repository as repo

router = APIRouter(tags=["links"])
public_router = APIRouter()

_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A filter or page parameter is invalid (code 10015)."},
    401: {"description": "Missing or unknown API key (code 10009)."},
}

_NOT_FOUND_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Link not found</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 4rem auto; padding: 0 1rem">
<h1>Link not found</h1>
<p>The link <code>{path}</code> does not exist or is no longer available.</p>
</body></html>
"""

_NO_STORE = {"Cache-Control": "no-store"}


@router.get("/messaging_url_domains", responses=_AUTH_ERRORS)
async def list_messaging_url_domains(
    org: CurrentOrg, ctx: Ctx, page: Annotated[Page, Depends(page_params)]
) -> Any:
    """Domains usable in a messaging profile's `url_shortener_settings.domain`."""
    async with ctx.db.reading() as uow:
        items, total = await service.list_domains(
            uow, ctx.settings, org.id, offset=page.offset, limit=page.size
        )
    return page.envelope(items, total)


# --- redirect -------------------------------------------------------------------------------------


def _not_found_page(path: str) -> HTMLResponse:
    return HTMLResponse(
        _NOT_FOUND_PAGE.format(path=escape("/" + path)), status_code=404, headers=_NO_STORE
    )


_BLOCKED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Link not available</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 4rem auto; padding: 0 1rem">
<h1>Link not available</h1>
<p>The link <code>{path}</code> points to an address this server does not send visitors to.</p>
</body></html>
"""


async def _follow(request: Request, ctx: AppContext, path: str) -> Response | None:
    """Redirect to the link's original URL and record the click; None for an unknown link.

    With the outbound guard on, a link whose URL is blocked now (looked up afresh, outside any
    transaction) answers 403 and records no click.
    """
    guard = outbound_guard(ctx)
    if guard.enforcing:
        async with ctx.db.transaction() as uow:
            found = await service.resolve(uow, path)
        if found is None:
            return None
        if await guard.url_problem(found["original_url"], fresh=True) is not None:
            return HTMLResponse(
                _BLOCKED_PAGE.format(path=escape("/" + path)), status_code=403, headers=_NO_STORE
            )
    async with ctx.db.transaction() as uow:
        link = await service.resolve(uow, path)
        if link is None:
            return None
        await service.record_click(
            uow,
            link,
            user_agent=request.headers.get("user-agent"),
            ip=request.client.host if request.client else None,
        )
    return Response(
        status_code=302,
        headers={
            "Location": detect.location(link["original_url"]),
            "Referrer-Policy": "no-referrer",
            **_NO_STORE,
        },
    )


@public_router.get(
    "/l/{path:path}",
    tags=["links"],
    status_code=302,
    response_class=Response,
    responses={
        302: {"description": "Redirect to the original URL; the click is recorded."},
        403: {"description": "The link's URL is blocked by the outbound guard (an HTML page)."},
        404: {"description": "No such short link (an HTML page)."},
    },
)
async def follow_short_link(path: str, request: Request, ctx: Ctx) -> Response:
    """A short link on the server's own host: `{base_url}/l/{prefix}{code}`.

    Short links on a configured link domain (`{scheme}://{domain}/{prefix}{code}`) are served at the
    root of that host, recognised by the `Host` header.
    """
    response = await _follow(request, ctx, path)
    return response if response is not None else _not_found_page("l/" + path)


def _host_of(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"host":
            return str(value.decode("latin-1").strip().lower())
    return ""


def _hostname(host: str) -> str:
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _own_hosts(ctx: AppContext) -> frozenset[str]:
    cached: frozenset[str] | None = ctx.extras.get("links.own_hosts")
    if cached is None:
        cached = service.own_hosts(ctx.settings)
        ctx.extras["links.own_hosts"] = cached
    return cached


class LinkHostRoute(APIRoute):
    """A last-resort GET route for requests addressed to a link domain (see the module doc)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.FULL or scope.get("method") != "GET":
            return Match.NONE, {}
        path: str = scope.get("path", "")
        if path == "/v2" or path.startswith("/v2/"):
            return Match.NONE, {}
        app = scope.get("app")
        ctx: AppContext | None = getattr(getattr(app, "state", None), "ctx", None)
        host = _hostname(_host_of(scope))
        if ctx is None or not host or host in _own_hosts(ctx):
            return Match.NONE, {}
        return Match.PARTIAL, child_scope


async def follow_on_link_domain(path: str, request: Request, ctx: Ctx) -> Response:
    response = await _follow(request, ctx, path)
    if response is not None:
        return response
    host = _host_of(request.scope)
    async with ctx.db.transaction() as uow:
        known = await repo.domain_configured(uow, host) or await repo.domain_configured(
            uow, _hostname(host)
        )
    if not known:
        raise HTTPException(404)
    return _not_found_page(path)


# --- analytics ------------------------------------------------------------------------------------


def _bool_param(name: str, raw: str | None) -> bool | None:
    if raw is None or raw == "":
        return None
    value = raw.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise bad_parameter(name, f"{name} must be true or false.")


@public_router.get("/analytics/link_clicks", tags=["analytics"], responses=_AUTH_ERRORS)
async def list_link_clicks(
    org: CurrentOrg,
    ctx: Ctx,
    page: Annotated[Page, Depends(page_params)],
    message_id: Annotated[str | None, Query(alias="filter[message_id]")] = None,
    is_bot: Annotated[str | None, Query(alias="filter[is_bot]")] = None,
) -> Any:
    """Clicks on this organization's short links, newest first (link-preview bots flagged)."""
    bot = _bool_param("filter[is_bot]", is_bot)
    async with ctx.db.reading() as uow:
        items, total = await service.list_clicks(
            uow, org.id, message_id=message_id, is_bot=bot, offset=page.offset, limit=page.size
        )
    return page.envelope(items, total)


@public_router.get(
    "/analytics/messages/{message_id}/links",
    tags=["analytics"],
    responses={**_AUTH_ERRORS, 404: {"description": "No such message in this organization."}},
)
async def list_message_links(message_id: str, org: CurrentOrg, ctx: Ctx) -> Any:
    """The short links of one message (original URL, short URL, recipient) with click counts."""
    async with ctx.db.reading() as uow:
        items = await service.message_links(uow, org.id, message_id)
    if items is None:
        raise not_found("Message", f"Message {message_id} not found.")
    return {"data": items}


# Registered last: it must never be preferred over another route.
public_router.add_api_route(
    "/{path:path}",
    follow_on_link_domain,
    methods=["GET"],
    response_class=Response,
    include_in_schema=False,
    route_class_override=LinkHostRoute,
)
