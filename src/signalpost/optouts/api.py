"""`GET /messaging_optouts`: the opt-out blocks of the caller's organization (contract §7.1)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from signalpost.accounts.deps import Ctx, CurrentOrg
from signalpost.kit.pagination import Page, page_params
from signalpost.optouts import schemas, service
from signalpost.optouts.repository import OptoutQuery

router = APIRouter(tags=["opt-outs"])


@router.get(
    "/messaging_optouts",
    responses={
        400: {"description": "A filter, date or page parameter is invalid (code 10015)."},
        401: {"description": "Missing or unknown API key (code 10009)."},
    },
)
async def list_messaging_optouts(
    org: CurrentOrg,
    ctx: Ctx,
    page: Annotated[Page, Depends(page_params)],
    query: Annotated[OptoutQuery, Depends(schemas.optout_filters)],
    redacted: Annotated[bool, Depends(schemas.redaction_param)],
) -> Any:
    """Opt-out blocks created when recipients opted out, newest first."""
    async with ctx.db.reading() as uow:
        rows, total = await service.list_optouts(
            uow, org.id, query, offset=page.offset, limit=page.size
        )
    return page.envelope([schemas.optout_view(r, redacted=redacted) for r in rows], total)
