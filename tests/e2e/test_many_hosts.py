"""Two `signalpost serve` processes on one PostgreSQL database behave as one service: each keeps no
state of its own that the other could contradict. An Idempotency-Key replayed on the other process
returns the first response, a sticky sender chosen on one is kept on the other, a sender's rate limit
counts the messages accepted by both, and a scheduled message is sent once while both run workers."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from telnyx import Telnyx

from tests.conftest import create_pg_database, drop_pg_database, unique_number
from tests.support.messaging import event_types, make_sender
from tests.support.processes import ready, stop
from tests.support.receiver import WebhookReceiver
from tests.support.server import free_port
from tests.support.wait import wait_until

pytestmark = pytest.mark.postgres

RATE = 2.0  # long-code messages per second


@dataclass
class Host:
    process: subprocess.Popen[str]
    base: str
    client: Telnyx


@dataclass
class Service:
    a: Host
    b: Host
    receiver: WebhookReceiver


def _serve(url: str, key: str, cwd: Path) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    env = {
        **os.environ,
        "SIGNALPOST_DATABASE_URL": url,
        "SIGNALPOST_PORT": str(port),
        "SIGNALPOST_API_KEY": key,
        "SIGNALPOST_WORKERS": "2",
        "SIGNALPOST_WORKER_POLL_INTERVAL": "0.2",
        "SIGNALPOST_SIMULATOR_LATENCY": "0.01",
        "SIGNALPOST_SCHEDULE_MIN_LEAD_SECONDS": "0",
        "SIGNALPOST_RATE_LIMITS__ENABLED": "true",
        "SIGNALPOST_RATE_LIMITS__LONG_CODE": str(RATE),
        "SIGNALPOST_RATE_LIMITS__ORGANIZATION": "1000",
        "SIGNALPOST_LOG_LEVEL": "warning",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "signalpost.cli", "serve"],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: ready(base) or process.poll() is not None, 120)
    assert process.poll() is None, "signalpost serve exited"
    return process, base


def _public_key(process: subprocess.Popen[str]) -> str:
    """The organization's webhook public key, from the start-up banner."""
    assert process.stdout is not None
    for line in process.stdout:
        if "TELNYX_PUBLIC_KEY=" in line:
            return line.split("=", 1)[1].strip()
    raise AssertionError("no public key in the banner")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    url, name = create_pg_database()
    key = "KEYhosts" + uuid.uuid4().hex
    cwd = tmp_path_factory.mktemp("hosts")
    receiver = WebhookReceiver().start()
    processes: list[subprocess.Popen[str]] = []
    try:
        first, base_a = _serve(url, key, cwd)  # applies the migrations
        processes.append(first)
        public_key = _public_key(first)
        second, base_b = _serve(url, key, cwd)
        processes.append(second)

        def client(base: str) -> Telnyx:
            return Telnyx(
                api_key=key,
                base_url=f"{base}/v2",
                public_key=public_key,
                max_retries=0,
                _strict_response_validation=True,
            )

        yield Service(
            Host(first, base_a, client(base_a)), Host(second, base_b, client(base_b)), receiver
        )
    finally:
        stop(processes)  # type: ignore[arg-type]
        receiver.stop()
        drop_pg_database(name)


def test_an_idempotency_key_replayed_on_the_other_host_returns_the_first_response(
    service: Service,
) -> None:
    sender = make_sender(service.a.client, service.receiver, unique_number())
    headers = {"Idempotency-Key": f"hosts-{uuid.uuid4().hex}"}
    first = service.a.client.messages.send(
        from_=sender.number, to="+13125550180", text="once", extra_headers=headers
    ).data
    again = service.b.client.messages.send(
        from_=sender.number, to="+13125550180", text="once", extra_headers=headers
    ).data
    assert first is not None and again is not None
    assert again.id == first.id
    assert again.to_dict() == first.to_dict()
    listed = service.b.client.messages.retrieve(first.id or "").data
    assert listed is not None and listed.id == first.id


def test_a_sticky_sender_chosen_on_one_host_is_kept_on_the_other(service: Service) -> None:
    a, b = service.a.client, service.b.client
    profile = a.messaging_profiles.create(
        name="sticky across hosts",
        whitelisted_destinations=["US"],
        webhook_url=service.receiver.url("/sticky"),
        number_pool_settings={
            "long_code_weight": 1,
            "toll_free_weight": 1,
            "skip_unhealthy": False,
            "sticky_sender": True,
        },
    ).data
    assert profile is not None and profile.id
    numbers = [unique_number() for _ in range(4)]
    a.number_orders.create(
        phone_numbers=[{"phone_number": n} for n in numbers], messaging_profile_id=profile.id
    )
    for i in range(4):
        to = f"+1415559{i:04d}"
        chosen = a.messages.send_number_pool(messaging_profile_id=profile.id, to=to, text="x").data
        assert chosen is not None and chosen.from_ is not None
        for host in itertools.islice(itertools.cycle([b, a]), 6):
            kept = host.messages.send_number_pool(
                messaging_profile_id=profile.id, to=to, text="y"
            ).data
            assert kept is not None and kept.from_ is not None
            assert kept.from_.phone_number == chosen.from_.phone_number


def test_a_senders_rate_limit_counts_the_messages_of_both_hosts(service: Service) -> None:
    sender = make_sender(service.a.client, service.receiver, unique_number())
    sent = []
    for i in range(6):
        host = service.a if i % 2 == 0 else service.b
        msg = host.client.messages.send(from_=sender.number, to="+13125550181", text=f"r{i}").data
        assert msg is not None and msg.received_at is not None
        sent.append(msg)
    # One slot per message, each at least one interval after the previous, whichever host took it.
    slots = sorted(m.received_at.timestamp() + (m.wait_seconds or 0.0) for m in sent)
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    assert all(g >= 1 / RATE - 0.01 for g in gaps), gaps


def test_a_scheduled_message_is_sent_once_while_both_hosts_run_workers(service: Service) -> None:
    sender = make_sender(service.a.client, service.receiver, unique_number())
    at = datetime.now(UTC) + timedelta(seconds=10)  # (requests are slow on a busy machine)
    scheduled = [
        host.client.messages.schedule(
            from_=sender.number, to=f"+131255502{i:02d}", text=f"s{i}", send_at=at
        ).data
        for i, host in enumerate([service.a, service.b, service.a, service.b])
    ]
    ids = [m.id or "" for m in scheduled if m is not None]
    assert len(ids) == 4

    def finalized() -> bool:
        got = service.receiver.on(sender.hook_path)
        return all("message.finalized" in event_types(got, i) for i in ids)

    wait_until(finalized, 60)
    received = service.receiver.on(sender.hook_path)
    for message_id in ids:
        assert event_types(received, message_id) == ["message.sent", "message.finalized"]
        final = service.b.client.messages.retrieve(message_id).data
        assert final is not None and final.sent_at is not None
        assert final.sent_at >= at - timedelta(seconds=0.01)
    for hook in received:
        event = service.a.client.webhooks.unwrap(hook.body.decode(), headers=hook.headers)
        assert event.data is not None
