"""`GET /metrics`: Prometheus text with HTTP requests (the fast lane's too), messages by status and
carrier, the job queue, webhook attempts with their latency, and rate-limit waits."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from telnyx import Telnyx

from tests import conftest
from tests.conftest import Account, sdk_client, unique_number
from tests.support.messaging import Sender, make_sender, wait_final
from tests.support.receiver import WebhookReceiver
from tests.support.server import RunningServer
from tests.support.wait import wait_until


@pytest.fixture(scope="module")
def settings_overrides() -> dict[str, Any]:
    # Throughput limits on (fast enough not to slow the tests) so that bursts wait.
    return {"rate_limits": {"enabled": True, "long_code": 2.0}}


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(server: RunningServer) -> Samples:
    r = httpx.get(f"{server.base_url}/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    out: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every sample of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def test_http_requests_are_counted_by_route_and_status_fast_lane_included(
    server: RunningServer, client: Telnyx, sender: Sender
) -> None:
    before = scrape(server)
    msg = client.messages.send(from_=sender.number, to="+13125550100", text="hi").data
    assert msg is not None and msg.id
    client.messages.retrieve(msg.id)
    httpx.get(f"{server.base_url}/v2/messages/{msg.id}")  # no key: 401
    httpx.get(f"{server.base_url}/v2/no/such/path")
    # Refused by the request limits before the framework: counted as well.
    too_big = httpx.post(
        f"{server.base_url}/v2/messages",
        content=b"{" + b" " * (server.settings.max_body_bytes + 1) + b"}",
        headers={"content-type": "application/json", "Authorization": "Bearer x"},
    )
    assert too_big.status_code == 413
    after = scrape(server)
    big = {"route": "/v2/messages", "method": "POST", "status": "413"}
    assert (
        value(after, "signalpost_http_requests_total", **big)
        - value(before, "signalpost_http_requests_total", **big)
        == 1
    )
    name = "signalpost_http_requests_total"
    send = {"route": "/v2/messages", "method": "POST", "status": "200"}
    assert value(after, name, **send) - value(before, name, **send) == 1
    get = {"route": "/v2/messages/{message_id}", "method": "GET"}
    assert value(after, name, **get, status="200") - value(before, name, **get, status="200") == 1
    assert value(after, name, **get, status="401") - value(before, name, **get, status="401") == 1
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    assert value(after, name, **unmatched) - value(before, name, **unmatched) == 1
    assert not any("no/such" in str(labels) for _, labels in after)


IN_FLIGHT = ("queued", "sending", "sent")


def settled(server: RunningServer) -> Samples | None:
    """A scrape in which no outbound message is on its way (the module's earlier tests' messages
    reached their final status), or None."""
    samples = scrape(server)
    moving = [
        v
        for (name, labels), v in samples.items()
        if name == "signalpost_messages"
        and ("direction", "outbound") in labels
        and any(("status", s) in labels for s in IN_FLIGHT)
    ]
    return samples if sum(moving) == 0 else None


def test_messages_by_status_and_carrier(
    server: RunningServer, client: Telnyx, sender: Sender
) -> None:
    before = wait_until(lambda: settled(server), 30)
    sent = []
    for to in ("+13125550101", "+13125550102", "+13125550110"):
        m = client.messages.send(from_=sender.number, to=to, text="status").data
        assert m is not None and m.id
        sent.append(wait_final(client, m.id))
    carrier = sent[0].to[0].carrier
    assert carrier
    after = scrape(server)
    name = "signalpost_messages"
    labels: dict[str, Any] = {"direction": "outbound", "carrier": carrier}
    delivered = value(after, name, status="delivered", **labels) - value(
        before, name, status="delivered", **labels
    )
    failed = value(after, name, status="delivery_failed", **labels) - value(
        before, name, status="delivery_failed", **labels
    )
    assert (delivered, failed) == (2, 1)


def test_queue_depth_and_oldest_due_job_by_kind(server: RunningServer) -> None:
    samples = scrape(server)
    kinds = {dict(labels)["kind"] for n, labels in samples if n == "signalpost_queue_jobs"}
    assert set(server.ctx.job_kinds) <= kinds  # every kind has a series, idle ones at 0


def test_a_scrape_needs_no_write_lock_on_sqlite(tmp_path: Path) -> None:
    """A scrape reads in a read-only transaction: while another connection holds SQLite's write
    lock it still answers at once. (In a unit of work it would wait for that lock, and it would
    hold the server's write turn, and so every send, for as long as its scans take.)"""
    path = tmp_path / "scraped.db"
    scraped = RunningServer(conftest.test_settings(f"sqlite+aiosqlite:///{path}")).start()
    try:
        writer = sqlite3.connect(path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        try:
            r = httpx.get(f"{scraped.base_url}/metrics", timeout=5)
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        assert r.status_code == 200
        assert "signalpost_queue_jobs" in r.text
    finally:
        scraped.stop()


def test_a_due_job_nobody_claims_shows_its_age(tmp_path: Path) -> None:
    """An API-only server (no workers): an accepted message's send job stays due and ages."""
    settings = conftest.test_settings(f"sqlite+aiosqlite:///{tmp_path / 'api-only.db'}", workers=0)
    api_only = RunningServer(settings).start()
    try:
        org, key = api_only.new_organization("queue-metrics")
        with sdk_client(api_only, key, org.public_key) as client:
            receiver_less = client.messaging_profiles.create(
                name="q", whitelisted_destinations=["US"]
            ).data
            assert receiver_less is not None and receiver_less.id
            number = unique_number()
            client.number_orders.create(
                phone_numbers=[{"phone_number": number}], messaging_profile_id=receiver_less.id
            )
            client.messages.send(from_=number, to="+13125550105", text="waiting")

        def aged() -> Samples | None:
            now = scrape(api_only)
            age = value(now, "signalpost_queue_oldest_due_seconds", kind="message.send")
            return now if age > 0 else None

        samples = wait_until(aged)
        assert value(samples, "signalpost_queue_jobs", kind="message.send", status="queued") == 1
    finally:
        api_only.stop()


def test_webhook_attempts_by_result_with_latency(
    server: RunningServer, account: Account, receiver: WebhookReceiver
) -> None:
    client = account.client
    good = make_sender(client, receiver, unique_number())
    bad = make_sender(client, receiver, unique_number())
    receiver.behave(bad.hook_path, status=503)
    before = scrape(server)
    for s in (good, bad):
        m = client.messages.send(from_=s.number, to="+13125550103", text="hooks").data
        assert m is not None and m.id
        wait_final(client, m.id)
    receiver.wait_for(lambda _: len(receiver.on(good.hook_path)) >= 2)

    def grown() -> Samples | None:
        now = scrape(server)
        name = "signalpost_webhook_attempt_seconds_count"
        ok = value(now, name, result="success") - value(before, name, result="success")
        failed = value(now, name, result="http_error") - value(before, name, result="http_error")
        return now if ok >= 2 and failed >= 2 else None

    after = wait_until(grown, timeout=20)
    inf = value(after, "signalpost_webhook_attempt_seconds_bucket", result="success", le="+Inf")
    count = value(after, "signalpost_webhook_attempt_seconds_count", result="success")
    assert inf == count
    small = value(after, "signalpost_webhook_attempt_seconds_bucket", result="success", le="0.005")
    assert small <= inf
    assert value(after, "signalpost_webhook_attempt_seconds_sum", result="success") > 0


def test_rate_limit_waits(server: RunningServer, client: Telnyx, sender: Sender) -> None:
    before = scrape(server)
    ids = []
    for _ in range(3):  # a burst from one long code: the 2nd and 3rd wait for their slots
        m = client.messages.send(from_=sender.number, to="+13125550104", text="burst").data
        assert m is not None and m.id
        ids.append(m.id)
    after = scrape(server)
    waits = value(after, "signalpost_rate_limit_waits_total") - value(
        before, "signalpost_rate_limit_waits_total"
    )
    seconds = value(after, "signalpost_rate_limit_wait_seconds_total") - value(
        before, "signalpost_rate_limit_wait_seconds_total"
    )
    assert waits == 2
    assert seconds > 0
    for message_id in ids:
        wait_final(client, message_id)


def test_metrics_token_when_set(tmp_path: Path) -> None:
    settings = conftest.test_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'token.db'}", workers=0, metrics_token="s3cret"
    )
    guarded = RunningServer(settings).start()
    try:
        url = f"{guarded.base_url}/metrics"
        refused = httpx.get(url)
        assert refused.status_code == 401
        assert refused.json()["errors"][0]["code"] == "10009"
        assert httpx.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
        ok = httpx.get(url, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and "signalpost_messages" in ok.text
    finally:
        guarded.stop()
