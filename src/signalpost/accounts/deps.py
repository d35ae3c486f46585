"""The authentication dependency: `Authorization: Bearer <key>` → the caller's organization."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from signalpost.accounts import service
from signalpost.accounts.service import Organization
from signalpost.accounts.throttle import ApiThrottle
from signalpost.context import AppContext, get_context
from signalpost.kit.errors import ApiError

# Cached key lookups are short-lived, so a revoked key stops working within seconds in every
# process, while a burst of requests costs one lookup.
_TTL = 2.0


def _unauthorized(detail: str) -> ApiError:
    return ApiError(
        401,
        "10009",
        "Authentication failed",
        detail,
        should_retry=False,
        headers={"WWW-Authenticate": "Bearer"},
    )


# Declares bearer authentication in the OpenAPI document; the check itself is `authenticate`.
_bearer = HTTPBearer(auto_error=False, scheme_name="bearerAuth")


async def require_organization(
    request: Request,
    ctx: Annotated[AppContext, Depends(get_context)],
    _declared: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> Organization:
    return await authenticate(ctx, request.headers.get("authorization", ""))


async def authenticate(ctx: AppContext, header: str) -> Organization:
    """The organization whose API key the `Authorization` header carries; 401 otherwise."""
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise _unauthorized("The request lacks an API key: send 'Authorization: Bearer <key>'.")
    digest = service.hash_key(key)
    cache: dict[str, tuple[Organization, float]] = ctx.extras.setdefault("auth_cache", {})
    cached = cache.get(digest)
    now = time.monotonic()
    if cached and cached[1] > now:
        if ctx.settings.api_rate_limit:
            await _throttle(ctx).admit(digest)
        return cached[0]
    org = await _look_up(ctx, cache, digest, key)
    if org is None:
        raise _unauthorized("The API key is unknown or revoked.")
    if ctx.settings.api_rate_limit:
        await _throttle(ctx).admit(digest)  # known keys only: unknown ones got their 401
    return org


async def _look_up(
    ctx: AppContext, cache: dict[str, tuple[Organization, float]], digest: str, key: str
) -> Organization | None:
    """Look the key up once for all the requests that carry it meanwhile: when its cached entry
    runs out under load, the requests in flight (dozens) would otherwise each open a transaction
    at the same moment, and on PostgreSQL a connection each, beyond the pool's."""
    lookups: dict[str, asyncio.Task[Organization | None]] = ctx.extras.setdefault(
        "auth_lookups", {}
    )
    task = lookups.get(digest)
    if task is None:

        async def look_up() -> Organization | None:
            async with ctx.db.reading() as uow:
                org = await service.authenticate(uow, key)
            if org is not None:
                if len(cache) > 10_000:
                    cache.clear()
                cache[digest] = (org, time.monotonic() + _TTL)
            return org

        task = lookups[digest] = asyncio.ensure_future(look_up())
        task.add_done_callback(lambda _t: lookups.pop(digest, None))
    # shielded: a request that goes away does not cancel the others' lookup
    return await asyncio.shield(task)


def _throttle(ctx: AppContext) -> ApiThrottle:
    throttle: ApiThrottle | None = ctx.extras.get("api_throttle")
    if throttle is None:
        rate = float(ctx.settings.api_rate_limit or 0)
        burst = ctx.settings.api_rate_burst or max(1, math.ceil(rate))
        throttle = ctx.extras["api_throttle"] = ApiThrottle(ctx.db, rate, burst)
    return throttle


CurrentOrg = Annotated[Organization, Depends(require_organization)]
Ctx = Annotated[AppContext, Depends(get_context)]
