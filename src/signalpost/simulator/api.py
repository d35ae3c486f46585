"""Simulator endpoints (ours, outside /v2): the chaos setting and messages from handsets."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from fastapi import APIRouter

from signalpost.accounts.deps import Ctx, CurrentOrg
from signalpost.carriers.simulator import Chaos, SimulatorCarrier, load_chaos, save_chaos
from signalpost.messages import inbound, media
from signalpost.messages.schemas import inbound_payload
from signalpost.simulator.schemas import SimulatedInbound

log = logging.getLogger("signalpost.simulator")

public_router = APIRouter(prefix="/simulator", tags=["simulator"])


@public_router.get("/chaos", summary="Read your organization's simulator chaos setting")
async def get_chaos(ctx: Ctx, org: CurrentOrg) -> dict[str, Any]:
    return {"data": (await load_chaos(ctx.db, org.id)).model_dump()}


@public_router.put(
    "/chaos",
    summary="Set failure probabilities and extra latency of the simulator for your organization",
)
async def put_chaos(body: Chaos, ctx: Ctx, org: CurrentOrg) -> dict[str, Any]:
    """Applies to this organization's messages only; other organizations keep their own."""
    await save_chaos(ctx.db, org.id, body)
    log.info(
        "simulator chaos set by organization %s: %s",
        org.name,
        body.model_dump(),
        extra={"organization_id": org.id, "chaos": body.model_dump()},
    )
    carrier = ctx.extras.get("carrier")
    if isinstance(carrier, SimulatorCarrier):
        carrier.forget_chaos(org.id)  # take effect at once in this process
    return {"data": body.model_dump()}


@public_router.post(
    "/inbound",
    summary="A simulated handset writes to one of your numbers",
    responses={
        400: {"description": "No content (40316), or media that cannot be fetched (40317)."},
        401: {"description": "Missing or unknown API key (code 10009)."},
        422: {"description": "'from' or 'to' is not a +E.164 number or short code (10015)."},
    },
)
async def post_inbound(body: SimulatedInbound, ctx: Ctx, org: CurrentOrg) -> dict[str, Any]:
    """Store the inbound message and deliver `message.received` to the number's profile webhooks.

    Keywords (STOP, START, HELP, ...) take effect and are answered as from a real handset. A
    number the caller does not own, or one on no messaging profile, still gets the message stored
    in the caller's organization, without a webhook.
    """
    msg = body.incoming()
    if msg.media_urls:
        msg = replace(msg, media=await media.describe_urls(ctx, msg.media_urls))
    async with ctx.db.transaction() as uow:
        row = await inbound.receive(ctx, uow, msg, organization_id=org.id)
    assert row is not None
    return {"data": inbound_payload(row)}
