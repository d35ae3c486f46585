"""`GET /webhook_deliveries`, `GET /webhook_deliveries/{id}`: the delivery log of one organization;
`POST /webhook_deliveries/{id}/redeliver`: send an event again."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from signalpost.accounts.deps import Ctx, CurrentOrg
from signalpost.kit.errors import not_found
from signalpost.kit.pagination import Page, page_params
from signalpost.webhooks import redeliver, schemas, service
from signalpost.webhooks.repository import DeliveryQuery

router = APIRouter(tags=["webhooks"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A filter or page parameter is invalid (code 10015)."},
    401: {"description": "Missing or unknown API key (code 10009)."},
}


@router.get("/webhook_deliveries", responses=_ERRORS)
async def list_webhook_deliveries(
    org: CurrentOrg,
    ctx: Ctx,
    page: Annotated[Page, Depends(page_params)],
    query: Annotated[DeliveryQuery, Depends(schemas.delivery_filters)],
) -> Any:
    """Webhook deliveries of this organization, newest event first, each with its attempts."""
    async with ctx.db.reading() as uow:
        items, total = await service.list_deliveries(
            uow, org.id, query, offset=page.offset, limit=page.size
        )
    return page.envelope([schemas.delivery_view(e, a) for e, a in items], total)


@router.get(
    "/webhook_deliveries/{delivery_id}",
    responses={**_ERRORS, 404: {"description": "No such delivery in this organization (10005)."}},
)
async def retrieve_webhook_delivery(delivery_id: str, org: CurrentOrg, ctx: Ctx) -> Any:
    """One delivery (its id is the event id a receiver got as `data.id`) with all its attempts."""
    async with ctx.db.reading() as uow:
        found = await service.get_delivery(uow, org.id, delivery_id)
    if found is None:
        raise not_found("Webhook delivery")
    return {"data": schemas.delivery_view(*found)}


@router.post(
    "/webhook_deliveries/{delivery_id}/redeliver",
    summary="Send a webhook event again",
    responses={
        401: _ERRORS[401],
        404: {"description": "No such delivery in this organization (10005)."},
    },
)
async def redeliver_webhook_delivery(delivery_id: str, org: CurrentOrg, ctx: Ctx) -> Any:
    """POST the event once more, now, to the URL that last took it (else its first URL): the
    same event id and payload, signed afresh, recorded as a new attempt. Answers the delivery with
    all its attempts, the redelivery first; whether it worked is in `attempts[0].status`."""
    found = await redeliver.redeliver(ctx, org.id, delivery_id)
    if found is None:
        raise not_found("Webhook delivery")
    return {"data": schemas.delivery_view(*found)}
