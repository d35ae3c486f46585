"""Webhook delivery end to end: events emitted in a transaction reach a real local receiver, signed
as the official SDK verifies them, retried, failed over, logged per attempt, and visible through
`client.webhook_deliveries` (strict validation) — on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
import telnyx
from sqlalchemy import func, select

from signalpost.context import AppContext
from signalpost.kit.jsonio import dumps
from signalpost.kit.queue import RetryLater
from signalpost.models import jobs, webhook_attempts, webhook_events
from signalpost.webhooks import service as webhooks
from signalpost.webhooks.jobs import deliver, http_client
from signalpost.webhooks.service import USER_AGENT, DeliveryConfig
from tests.conftest import Account
from tests.support.receiver import Received, WebhookReceiver
from tests.support.server import RunningServer, free_port
from tests.support.wait import wait_until

TIMEOUT = 0.5


@pytest.fixture(scope="module")
def settings_overrides() -> dict[str, Any]:
    return {"webhook_timeout": TIMEOUT, "webhook_retry_base": 0.05, "webhook_attempts": 3}


def emit(
    server: RunningServer,
    org_id: str,
    urls: Sequence[str],
    *,
    event_type: str = "message.sent",
    payload: dict[str, Any] | None = None,
    message_id: str | None = None,
    envelope: webhooks.Envelope = "event",
) -> str | None:
    async def go(ctx: AppContext) -> str | None:
        async with ctx.db.transaction() as uow:
            return await webhooks.emit(
                uow,
                organization_id=org_id,
                event_type=event_type,
                payload=payload if payload is not None else {"id": message_id or "m"},
                urls=urls,
                message_id=message_id,
                envelope=envelope,
            )

    return server.run(go)


def path() -> str:
    return f"/hooks/{uuid.uuid4().hex}"


def delivery(account: Account, event_id: str) -> Any:
    return account.client.webhook_deliveries.retrieve(event_id).data


def finished(account: Account, event_id: str) -> Any:
    def check() -> Any:
        d = delivery(account, event_id)
        return d if d.status in ("delivered", "failed") else None

    return wait_until(check, timeout=20)


def _payload(message_id: str) -> dict[str, Any]:
    return {
        "record_type": "message",
        "id": message_id,
        "direction": "outbound",
        "type": "SMS",
        "text": "Hello, wörld ✓",
        "to": [{"phone_number": "+13125550001", "status": "sent", "carrier": "", "line_type": ""}],
    }


def test_delivery_is_signed_for_the_sdk_and_the_bytes_are_as_sent(
    server: RunningServer, receiver: WebhookReceiver, account: Account
) -> None:
    p = path()
    message_id = str(uuid.uuid4())
    event_id = emit(
        server,
        account.org.id,
        [receiver.url(p)],
        payload=_payload(message_id),
        message_id=message_id,
    )
    assert event_id is not None
    receiver.wait_for(lambda rs: any(r.path == p for r in rs))
    [got] = receiver.on(p)

    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"] == USER_AGENT
    assert int(got.headers["content-length"]) == len(got.body)
    event = account.client.webhooks.unwrap(got.body.decode(), headers=got.headers)
    assert event.data is not None and event.data.id == event_id
    with pytest.raises(ValueError):
        account.client.webhooks.unwrap(got.body.decode() + " ", headers=got.headers)

    body = got.json()
    assert body["data"]["record_type"] == "event"
    assert body["data"]["event_type"] == "message.sent"
    assert body["data"]["payload"] == _payload(message_id)
    assert body["data"]["occurred_at"].endswith("Z")
    assert body["meta"] == {"attempt": 1, "delivered_to": receiver.url(p)}
    assert (
        dumps(body) == got.body
    )  # compact JSON, key order kept: the stored bytes are what was sent

    d = finished(account, event_id)
    assert d.status == "delivered" and d.id == event_id and d.record_type == "webhook_delivery"
    assert d.user_id == account.org.id
    assert d.webhook is not None and d.webhook.id == event_id
    assert d.webhook.payload == _payload(message_id)
    [attempt] = d.attempts or []
    assert attempt.status == "delivered"
    assert attempt.http is not None and attempt.http.response is not None
    assert attempt.http.response.status == 200 and attempt.http.response.body == "ok"
    assert attempt.http.request is not None and attempt.http.request.url == receiver.url(p)
    sent = dict((k.lower(), v) for k, v in attempt.http.request.headers or [])
    assert sent["telnyx-timestamp"] and sent["user-agent"] == USER_AGENT
    assert d.started_at is not None and d.finished_at is not None
    assert d.started_at <= d.finished_at


def test_bare_envelope_for_link_clicks(
    server: RunningServer, receiver: WebhookReceiver, account: Account
) -> None:
    p = path()
    click = {
        "record_type": "link_clicked",
        "message_id": str(uuid.uuid4()),
        "to": "13125550001",
        "url": "https://example.com/x",
        "time_clicked": "2019-04-01T14:45:45.450Z",
    }
    event_id = emit(
        server,
        account.org.id,
        [receiver.url(p)],
        event_type="message.link_click",
        payload=click,
        envelope="bare",
    )
    assert event_id is not None
    receiver.wait_for(lambda rs: any(r.path == p for r in rs))
    [got] = receiver.on(p)
    account.client.webhooks.unwrap(got.body.decode(), headers=got.headers)
    assert got.json() == {"data": click, "meta": {"attempt": 1, "delivered_to": receiver.url(p)}}
    d = finished(account, event_id)
    assert d.webhook is not None and d.webhook.id == event_id
    assert d.webhook.event_type == "message.link_click" and d.webhook.payload == click


def test_500_is_retried_three_times_then_the_failover_url_is_used(
    server: RunningServer, receiver: WebhookReceiver, account: Account
) -> None:
    primary, failover = path(), path()
    receiver.behave(primary, status=500)
    urls = [receiver.url(primary), receiver.url(failover)]
    event_id = emit(server, account.org.id, urls)
    assert event_id is not None
    receiver.wait_for(lambda rs: any(r.path == failover for r in rs))

    first = receiver.on(primary)
    bodies = [r.json() for r in first] + [r.json() for r in receiver.on(failover)]
    assert [b["meta"]["attempt"] for b in bodies] == [1, 2, 3, 4]
    assert [b["meta"]["delivered_to"] for b in bodies] == [urls[0]] * 3 + [urls[1]]
    assert {b["data"]["id"] for b in bodies} == {event_id}
    # Backoff: retry_base × 2^n between tries on one URL (0.05 s, then 0.1 s).
    assert first[1].at - first[0].at >= 0.04
    assert first[2].at - first[1].at >= 0.09
    for r in [*first, *receiver.on(failover)]:
        account.client.webhooks.unwrap(r.body.decode(), headers=r.headers)

    d = finished(account, event_id)
    assert d.status == "delivered"
    attempts = d.attempts or []
    assert [a.status for a in attempts] == ["delivered", "failed", "failed", "failed"]
    assert [a.http.response.status for a in attempts if a.http and a.http.response] == [
        200,
        500,
        500,
        500,
    ]
    assert [a.http.request.url for a in attempts if a.http and a.http.request] == [
        urls[1],
        *[urls[0]] * 3,
    ]
    assert attempts[1].errors == [75499] and attempts[0].errors is None


def test_a_receiver_that_times_out_gets_logged_attempts_with_an_error(
    server: RunningServer, receiver: WebhookReceiver, account: Account
) -> None:
    p = path()
    receiver.behave(p, status=200, delay=TIMEOUT * 2)
    event_id = emit(server, account.org.id, [receiver.url(p)])
    assert event_id is not None
    d = finished(account, event_id)
    assert d.status == "failed"
    attempts = d.attempts or []
    assert len(attempts) == 3
    for a in attempts:
        assert a.status == "failed" and a.errors == [75499]
        assert a.http is not None and a.http.response is None
        assert "timeout" in a.to_dict()["error"]
        assert a.to_dict()["latency_ms"] >= TIMEOUT * 1000 * 0.9
    assert len(receiver.on(p)) == 3


def test_a_receiver_that_is_down_ends_failed_and_visible(
    server: RunningServer, account: Account
) -> None:
    url = f"http://127.0.0.1:{free_port()}/down"
    event_id = emit(server, account.org.id, [url])
    assert event_id is not None
    d = finished(account, event_id)
    assert d.status == "failed"
    attempts = d.attempts or []
    assert len(attempts) == 3
    assert all("connection" in a.to_dict()["error"] for a in attempts)
    assert d.finished_at is not None and d.started_at is not None

    failed = list(account.client.webhook_deliveries.list(filter={"status": {"eq": "failed"}}))
    assert event_id in [x.id for x in failed]
    delivered = account.client.webhook_deliveries.list(filter={"status": {"eq": "delivered"}})
    assert event_id not in [x.id for x in delivered]

    async def rows(ctx: AppContext) -> tuple[int, str]:
        async with ctx.db.transaction() as uow:
            n = (
                await uow.conn.execute(
                    select(func.count())
                    .select_from(webhook_attempts)
                    .where(webhook_attempts.c.event_id == event_id)
                )
            ).scalar_one()
            status = (
                await uow.conn.execute(
                    select(webhook_events.c.status).where(webhook_events.c.id == event_id)
                )
            ).scalar_one()
            return int(n), str(status)

    assert server.run(rows) == (3, "failed")


class FailFirst:
    """A receiver behaviour answering 500 to the first request and 200 afterwards."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.body = b"ok"
        self._calls = 0
        self._lock = threading.Lock()

    @property
    def status(self) -> int:
        with self._lock:
            self._calls += 1
            return 500 if self._calls == 1 else 200


def test_events_of_one_message_arrive_in_emit_order_even_after_a_failure(
    server: RunningServer, receiver: WebhookReceiver, account: Account
) -> None:
    p = path()
    receiver.behaviours[p] = FailFirst()  # type: ignore[assignment]
    message_id = str(uuid.uuid4())
    types = ["message.sent"] + ["message.finalized"] * 5
    ids = [
        emit(
            server,
            account.org.id,
            [receiver.url(p)],
            event_type=t,
            payload={"id": message_id, "seq": i},
            message_id=message_id,
        )
        for i, t in enumerate(types)
    ]
    receiver.wait_for(lambda rs: sum(r.path == p for r in rs) >= len(types) + 1)
    got: list[Received] = receiver.on(p)
    assert [r.json()["data"]["payload"]["seq"] for r in got] == [0, *range(len(types))]
    assert [r.json()["meta"]["attempt"] for r in got] == [1, 2] + [1] * (len(types) - 1)
    assert [r.json()["data"]["id"] for r in got] == [ids[0], *ids]


def test_events_sharing_a_delivery_job_keep_each_message_in_order(
    server: RunningServer, receiver: WebhookReceiver, account: Account
) -> None:
    # One transaction emits the `sent` events of three messages (one delivery job); the receiver of
    # the second fails once. The three `finalized` events, emitted together later, reach each
    # receiver after that message's `sent` event, the failed one's retry included.
    paths = [path() for _ in range(3)]
    receiver.behaviours[paths[1]] = FailFirst()  # type: ignore[assignment]
    message_ids = [str(uuid.uuid4()) for _ in paths]

    def emit_all(event_type: str) -> list[str | None]:
        async def go(ctx: AppContext) -> list[str | None]:
            async with ctx.db.transaction() as uow:
                return await webhooks.emit_many(
                    uow,
                    [
                        webhooks.EventSpec(
                            account.org.id,
                            event_type,
                            {"id": m, "type": event_type},
                            [receiver.url(p)],
                            message_id=m,
                        )
                        for m, p in zip(message_ids, paths, strict=True)
                    ],
                )

        return server.run(go)

    sent = emit_all("message.sent")
    finalized = emit_all("message.finalized")
    receiver.wait_for(lambda rs: sum(r.path in paths for r in rs) >= 7)
    for i, p in enumerate(paths):
        got = [(r.json()["data"]["id"], r.json()["meta"]["attempt"]) for r in receiver.on(p)]
        first = [(sent[i], 1), (sent[i], 2)] if i == 1 else [(sent[i], 1)]
        assert got == [*first, (finalized[i], 1)]
    for event_id in [*sent, *finalized]:
        assert event_id is not None
        assert finished(account, event_id).status == "delivered"


def test_a_rolled_back_transaction_emits_nothing(
    server: RunningServer, receiver: WebhookReceiver, account: Account
) -> None:
    p = path()

    class Boom(Exception):
        pass

    async def rolled_back(ctx: AppContext) -> str | None:
        emitted: str | None = None
        try:
            async with ctx.db.transaction() as uow:
                emitted = await webhooks.emit(
                    uow,
                    organization_id=account.org.id,
                    event_type="message.sent",
                    payload={"id": "rolled-back"},
                    urls=[receiver.url(p)],
                )
                raise Boom
        except Boom:
            pass
        return emitted

    event_id = server.run(rolled_back)
    assert event_id is not None

    async def stored(ctx: AppContext) -> tuple[int, int]:
        async with ctx.db.transaction() as uow:
            events = (
                await uow.conn.execute(
                    select(func.count())
                    .select_from(webhook_events)
                    .where(webhook_events.c.id == event_id)
                )
            ).scalar_one()
            queued = (
                await uow.conn.execute(
                    select(jobs.c.payload).where(jobs.c.kind == webhooks.JOB_KIND)
                )
            ).scalars()
            return int(events), sum(1 for j in queued if j.get("event_id") == event_id)

    assert server.run(stored) == (0, 0)
    with pytest.raises(telnyx.NotFoundError):
        account.client.webhook_deliveries.retrieve(event_id)
    # A committed event to the same URL afterwards is the only one that arrives.
    later = emit(server, account.org.id, [receiver.url(p)], payload={"id": "committed"})
    receiver.wait_for(lambda rs: any(r.path == p for r in rs))
    assert [r.json()["data"]["id"] for r in receiver.on(p)] == [later]


def test_no_urls_stores_nothing(server: RunningServer, account: Account) -> None:
    assert emit(server, account.org.id, []) is None
    assert emit(server, account.org.id, ["", "  "]) is None


def test_a_repeated_run_posts_the_same_attempt_again_but_records_it_once(
    server: RunningServer, receiver: WebhookReceiver, account: Account
) -> None:
    """What a worker killed mid-POST leaves behind: the job runs again and POSTs the same event."""
    p = path()
    receiver.behave(p, status=200, delay=0.3)
    event_id = emit(server, account.org.id, [receiver.url(p)])
    assert event_id is not None
    receiver.wait_for(lambda rs: any(r.path == p for r in rs))  # the worker's POST is in flight

    async def rerun(ctx: AppContext) -> str:
        config = DeliveryConfig.from_settings(ctx.settings)
        try:
            await deliver(ctx.db, http_client(ctx), config, event_id)
        except RetryLater:
            return "already recorded"
        return "recorded"

    outcome = server.run(rerun)
    assert outcome in ("recorded", "already recorded")
    d = finished(account, event_id)
    assert d.status == "delivered"
    assert len(d.attempts or []) == 1
    posts = receiver.on(p)
    assert len(posts) == 2
    assert {r.json()["data"]["id"] for r in posts} == {event_id}
    assert [r.json()["meta"]["attempt"] for r in posts] == [1, 1]


def test_deliveries_are_scoped_to_the_organization(
    server: RunningServer, receiver: WebhookReceiver, account: Account, other_account: Account
) -> None:
    p = path()
    event_id = emit(server, account.org.id, [receiver.url(p)])
    assert event_id is not None
    finished(account, event_id)
    with pytest.raises(telnyx.NotFoundError) as err:
        other_account.client.webhook_deliveries.retrieve(event_id)
    assert err.value.response.json()["errors"][0]["code"] == "10005"
    assert list(other_account.client.webhook_deliveries.list()) == []
    assert [d.id for d in account.client.webhook_deliveries.list()] == [event_id]


def test_list_filters_and_pagination(
    server: RunningServer, receiver: WebhookReceiver, account: Account
) -> None:
    ok, bad = path(), path()
    receiver.behave(bad, status=404)
    message_id = str(uuid.uuid4())
    sent = emit(
        server,
        account.org.id,
        [receiver.url(ok)],
        payload={"id": message_id, "to": "+13125550199"},
        message_id=message_id,
    )
    final = emit(
        server,
        account.org.id,
        [receiver.url(ok)],
        event_type="message.finalized",
        payload={"id": message_id},
        message_id=message_id,
    )
    lost = emit(server, account.org.id, [receiver.url(bad)], event_type="message.received")
    assert sent and final and lost
    for i in (sent, final, lost):
        finished(account, i)
    c = account.client.webhook_deliveries

    def ids(**f: Any) -> list[str]:
        return [d.id or "" for d in c.list(filter=f)] if f else [d.id or "" for d in c.list()]

    assert ids() == [lost, final, sent]  # newest first
    assert ids(status={"eq": "failed"}) == [lost]
    assert ids(event_type="message.sent,message.received") == [lost, sent]
    assert ids(webhook={"contains": "+13125550199"}) == [sent]
    assert ids(webhook={"contains": message_id}) == [final, sent]
    assert ids(attempts={"contains": bad}) == [lost]
    if "404" not in receiver.base_url:  # the port could contain it too
        assert ids(attempts={"contains": "404"}) == [lost]
    whole = {d.id: d for d in c.list()}
    started = whole[final].started_at
    assert started is not None
    after = ids(started_at={"gte": started.isoformat()})
    assert final in after
    sent_started = whole[sent].started_at
    assert sent_started is not None and sent_started <= started
    # `final` starts once `sent` is delivered: at a later millisecond unless the POST was faster.
    assert (sent in after) == (sent_started == started)
    assert ids(finished_at={"lte": "2000-01-01T00:00:00Z"}) == []
    assert set(ids(finished_at={"gte": "2000-01-01T00:00:00Z"})) == {sent, final, lost}

    page = c.list(page_size=2)
    assert page.meta is not None and page.meta.total_pages == 2 and len(page.data) == 2
    assert [d.id for d in c.list(page_size=1)] == [lost, final, sent]  # auto-pagination


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"filter[status][eq]": "pending"}, "filter[status][eq]"),
        ({"filter[started_at][gte]": "yesterday"}, "filter[started_at][gte]"),
        ({"page[size]": "0"}, "page[size]"),
    ],
)
def test_bad_filters_are_400_with_the_parameter(
    server: RunningServer, account: Account, query: dict[str, str], parameter: str
) -> None:
    r = httpx.get(
        f"{server.base_url}/v2/webhook_deliveries",
        params=query,
        headers={"Authorization": f"Bearer {account.api_key}"},
    )
    assert r.status_code == 400
    error = r.json()["errors"][0]
    assert error["code"] == "10015" and error["source"]["parameter"] == parameter


def test_deliveries_need_an_api_key(server: RunningServer) -> None:
    r = httpx.get(f"{server.base_url}/v2/webhook_deliveries")
    assert r.status_code == 401


def test_a_delivery_job_that_fails_for_good_fails_its_event(
    server: RunningServer, account: Account
) -> None:
    """An unexpected error on the job's last run must not leave the event `pending` forever."""
    from sqlalchemy import update

    from signalpost.kit.queue import Job

    event_id = str(uuid.uuid4())

    async def corrupt_event(ctx: AppContext) -> None:
        async with ctx.db.transaction() as uow:
            await webhooks.emit(
                uow,
                organization_id=account.org.id,
                event_type="message.sent",
                payload={"id": event_id},
                urls=["http://127.0.0.1:9/never"],
            )
            # A row the delivery cannot plan from (not a list of URLs).
            await uow.conn.execute(
                update(webhook_events)
                .where(webhook_events.c.organization_id == account.org.id)
                .values(urls=5)
            )

    async def last_run(ctx: AppContext) -> str:
        async with ctx.db.transaction() as uow:
            eid = (
                await uow.conn.execute(
                    select(webhook_events.c.id).where(
                        webhook_events.c.organization_id == account.org.id
                    )
                )
            ).scalar_one()
        handler = ctx.job_kinds["webhook.deliver"].batch
        assert handler is not None
        job = Job(
            id=0,
            kind="webhook.deliver",
            payload={"event_id": eid},
            attempts=10,
            max_attempts=10,
            group_key=None,
        )
        with pytest.raises(TypeError):
            await handler(ctx.db, [job])
        return str(eid)

    server.run(corrupt_event)
    eid = server.run(last_run)
    delivery = account.client.webhook_deliveries.retrieve(eid).data
    assert delivery is not None and delivery.status == "failed"


def test_events_delivered_in_one_batch_each_keep_their_own_retries(
    server: RunningServer, receiver: WebhookReceiver, account: Account
) -> None:
    """Events committed together are delivered as one batch: a failing receiver retries its own
    events with backoff and fails them, while the others are delivered once."""
    ok, bad = path(), path()
    receiver.behave(bad, status=503)

    async def emit_together(ctx: AppContext) -> list[str | None]:
        specs = [
            webhooks.EventSpec(account.org.id, "message.sent", {"id": f"m{i}"}, [receiver.url(p)])
            for i, p in enumerate([ok, bad, ok, ok, bad, ok])
        ]
        async with ctx.db.transaction() as uow:
            return await webhooks.emit_many(uow, specs)

    event_ids = server.run(emit_together)
    results = [finished(account, str(e)) for e in event_ids]
    assert [d.status for d in results] == [
        "delivered",
        "failed",
        "delivered",
        "delivered",
        "failed",
        "delivered",
    ]
    for d in results:
        assert len(d.attempts or []) == (1 if d.status == "delivered" else 3)
    assert len(receiver.on(ok)) == 4
    assert len(receiver.on(bad)) == 6
