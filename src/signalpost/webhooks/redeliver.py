"""Sending a webhook event again on request (`POST /v2/webhook_deliveries/{id}/redeliver`, the
inbox's "Redeliver" button).

A developer whose handler failed every attempt fixes it and asks for the event again. The event is
POSTed once, right away (in the request, so the answer shows how it went), with the same event id
and payload, freshly signed (a new `telnyx-timestamp`), and `meta.attempt` one past the attempts
recorded so far. It goes to the URL that last took it, or else to the event's first URL. The
attempt is recorded like any other (one `webhook_attempts` row); when it succeeds the event is
`delivered`, when it fails the event keeps the status it had.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import RowMapping

from signalpost.context import AppContext
from signalpost.kit.signing import signer_for
from signalpost.webhooks import repository as repo
from signalpost.webhooks import service
from signalpost.webhooks.jobs import http_client
from signalpost.webhooks.service import DeliveryConfig


def target_url(event: Mapping[str, Any]) -> str:
    """Where a redelivery goes: the URL the event was delivered to, else its first URL."""
    urls = list(event["urls"] or [])
    delivered_to = event["delivered_to"]
    if delivered_to:
        return str(delivered_to)
    return str(urls[0])


async def redeliver(
    ctx: AppContext, organization_id: str, event_id: str
) -> tuple[dict[str, Any], list[RowMapping]] | None:
    """POST the event once more and record the attempt; the delivery with all its attempts (newest
    first), or None when the organization has no such event."""
    config = DeliveryConfig.from_settings(ctx.settings)
    async with ctx.db.transaction() as uow:
        event = await repo.redelivery_state(uow, organization_id, event_id)
    if event is None:
        return None
    url = target_url(event)
    body = service.body_bytes(event["payload_json"], int(event["attempts"]) + 1, url)
    headers = service.request_headers(signer_for(event["signing_seed"]), body, config.user_agent)
    result = await service.post(http_client(ctx), url, body, headers, config.timeout)
    first = next(iter(event["urls"] or []), None)
    attempt: dict[str, Any] = {
        "url": service.stored_url(url, url == first),
        "status_code": result.status_code,
        "latency_ms": result.latency_ms,
        "response_body": result.response_body,
        "error": result.error,
        "request_headers": [[k, v] for k, v in headers.items()],
        "response_headers": result.response_headers,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
    }
    async with ctx.db.transaction() as uow:
        await repo.record_redelivery(uow, event_id, attempt, result.ok)
        return await service.get_delivery(uow, organization_id, event_id)
