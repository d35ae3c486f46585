"""Gateway endpoints of our own (outside /v2): the carriers, routes and SMPP binds, for server
operators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from signalpost.accounts.deps import Ctx, CurrentOrg

admin = APIRouter(prefix="/admin", tags=["admin"])


@admin.get(
    "/carriers",
    summary="Carriers, routes and the state of every SMPP bind (server operators)",
    responses={
        401: {"description": "Missing or unknown API key (code 10009)."},
        403: {"description": "Not a key of the server's default organization (code 10010)."},
    },
)
async def get_carriers(ctx: Ctx, org: CurrentOrg) -> dict[str, Any]:
    """Per bind: state, holder process, in flight, submitted and failed counts, last receipt and
    last error (as `signalpost carriers status --json`). Only the default organization's keys."""
    from signalpost.accounts.service import DEFAULT_ORGANIZATION
    from signalpost.carriers.status import bind_status, configured
    from signalpost.kit.errors import ApiError

    if org.name != DEFAULT_ORGANIZATION:
        raise ApiError(
            403,
            "10010",
            "Authorization failed",
            "Only keys of the server's default organization may read the carrier status.",
            should_retry=False,
        )
    return {"data": {**configured(ctx.settings), "binds": await bind_status(ctx.settings, ctx.db)}}


public_router = admin
