"""Messages sent together go through the send, receipt and webhook jobs as batches: each message
still ends with its own outcome (throttled and retried, refused, expired, failed, delivered,
on-net), and its `message.sent` and `message.finalized` events exist once and arrive in order."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import select, update
from telnyx import Telnyx

from signalpost.context import AppContext
from signalpost.kit.clock import utcnow
from signalpost.messages import service
from signalpost.messages.senders import SendRequest
from signalpost.models import messages, webhook_events
from tests.conftest import Account, unique_number
from tests.support.messaging import event_types, make_sender, wait_final
from tests.support.receiver import WebhookReceiver
from tests.support.server import RunningServer

OUTCOMES = [
    ("+13125550100", "delivered", ["message.sent", "message.finalized"]),
    ("+13125550116", "delivered", ["message.sent", "message.finalized"]),  # throttled twice
    ("+13125550112", "sending_failed", ["message.finalized"]),
    ("+13125550110", "delivery_failed", ["message.sent", "message.finalized"]),
    ("+13125550101", "delivered", ["message.sent", "message.finalized"]),
    ("expired", "expired", ["message.finalized"]),
    ("on-net", "delivered", ["message.sent", "message.finalized"]),
]


def test_a_batch_of_sends_ends_each_message_with_its_own_outcome_once(
    server: RunningServer, client: Telnyx, account: Account, receiver: WebhookReceiver
) -> None:
    sender = make_sender(client, receiver, unique_number())
    handset = make_sender(client, receiver, unique_number())  # on-net: a number of this server
    destinations = {"expired": "+13125550102", "on-net": handset.number}

    async def send_together(ctx: AppContext) -> list[str]:
        reqs = [
            SendRequest(
                endpoint="messages",
                from_=sender.number,
                to=destinations.get(to, to),
                text=f"batch {i}",
            )
            for i, (to, _, _) in enumerate(OUTCOMES)
        ]
        async with ctx.db.transaction() as uow:
            rows = await service.send_many(ctx, uow, account.org, reqs)
            ids = [str(r["id"]) for r in rows]
            # One of them outlived its validity while it waited in the queue.
            await uow.conn.execute(
                update(messages)
                .where(messages.c.id == ids[5])
                .values(valid_until=utcnow() - timedelta(seconds=1))
            )
        return ids

    ids = server.run(send_together)
    for message_id, (_, status, _) in zip(ids, OUTCOMES, strict=True):
        assert wait_final(client, message_id).to[0].status == status

    def all_events_in() -> bool:
        got = receiver.on(sender.hook_path)
        return all(
            event_types(got, i) == expected
            for i, (_, _, expected) in zip(ids, OUTCOMES, strict=True)
        )

    receiver.wait_for(lambda _: all_events_in(), 20)
    assert _stored_events(server, ids) == {
        (i, t): 1 for i, (_, _, expected) in zip(ids, OUTCOMES, strict=True) for t in expected
    }
    # The on-net message arrived at the number's owner.
    inbound = receiver.wait_for(
        lambda rs: any(r.path == handset.hook_path and b"message.received" in r.body for r in rs),
        20,
    )
    assert inbound


def _stored_events(server: RunningServer, ids: list[str]) -> dict[tuple[str, str], int]:
    async def go(ctx: AppContext) -> dict[tuple[str, str], int]:
        async with ctx.db.transaction() as uow:
            rows = await uow.conn.execute(
                select(webhook_events.c.message_id, webhook_events.c.event_type).where(
                    webhook_events.c.message_id.in_(ids)
                )
            )
            return dict(Counter((str(m), str(t)) for m, t in rows))

    return server.run(go)
