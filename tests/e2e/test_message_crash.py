"""A worker process killed while messages are in flight: after a new worker starts, every accepted
message reaches a final state exactly once and no webhook event is lost."""

from __future__ import annotations

import signal
import subprocess
import uuid
from collections import defaultdict
from pathlib import Path

from telnyx import Telnyx

from tests.support.processes import crash_test_env, ready, spawn, stop
from tests.support.receiver import Received, WebhookReceiver, complete_events
from tests.support.server import free_port
from tests.support.wait import wait_until

FINAL = {"delivered", "delivery_failed", "delivery_unconfirmed", "sending_failed", "expired"}


def test_killed_worker_loses_nothing(empty_db_url: str, tmp_path: Path) -> None:
    receiver = WebhookReceiver().start()
    port = free_port()
    key = "KEYcrash" + uuid.uuid4().hex
    env = crash_test_env(empty_db_url, port, key, simulator_latency="0.3")
    api = spawn(["serve", "--no-workers"], env, tmp_path)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: ready(base), 30)
        client = Telnyx(
            api_key=key, base_url=f"{base}/v2", max_retries=0, _strict_response_validation=True
        )
        profile = client.messaging_profiles.create(
            name="crash", whitelisted_destinations=["US"], webhook_url=receiver.url("/crash")
        ).data
        assert profile is not None and profile.id
        client.number_orders.create(
            phone_numbers=[{"phone_number": "+13125557000"}], messaging_profile_id=profile.id
        )
        ids = [
            client.messages.send(from_="+13125557000", to=f"+1415555{i:04d}", text=f"m{i}").data.id  # type: ignore[union-attr]
            for i in range(60)
        ]
        workers.append(spawn(["worker", "--count", "2"], env, tmp_path))
        # Kill the worker once some, but not all, messages have been sent.
        wait_until(lambda: len(receiver.on("/crash")) >= 10, 30)
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(10)
        workers.append(spawn(["worker", "--count", "2"], env, tmp_path))

        def all_final() -> bool:
            return all(client.messages.retrieve(i).data.to[0].status in FINAL for i in ids)  # type: ignore[union-attr,index]

        wait_until(all_final, 60, interval=0.2)

        def complete(rs: list[Received]) -> bool:
            finalized = {
                d["payload"]["id"]
                for d in complete_events(rs)
                if d["event_type"] == "message.finalized"
            }
            return len(finalized) >= len(ids)

        hooks = receiver.wait_for(complete, 60)
        event_ids: dict[tuple[str, str], set[str]] = defaultdict(set)
        for data in complete_events(hooks):
            event_ids[(data["payload"]["id"], data["event_type"])].add(data["id"])
        for mid in ids:
            final = client.messages.retrieve(mid).data
            assert final is not None and final.to
            assert final.to[0].status == "delivered"
            # One event per (message, type): a redelivery after the crash repeats the same event id.
            assert len(event_ids[(mid, "message.sent")]) == 1
            assert len(event_ids[(mid, "message.finalized")]) == 1
    finally:
        stop([*workers, api])
        receiver.stop()
