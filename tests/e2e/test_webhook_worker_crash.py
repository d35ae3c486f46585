"""A worker process killed with SIGKILL in the middle of a webhook POST: another worker sends the
webhook again within seconds (the dead worker's lease is short and renewed by a heartbeat while
its jobs run), with the same event id and attempt number."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from pathlib import Path

from telnyx import Telnyx

from tests.support.processes import crash_test_env, spawn, stop, wait_ready
from tests.support.receiver import Received, WebhookReceiver
from tests.support.server import free_port

# The default lease (settings.job_lease_seconds), and the time a fresh worker process needs to
# start and claim: the duplicate must come within about their sum.
LEASE = 10.0
STARTUP_ALLOWANCE = 8.0


def test_a_webhook_interrupted_by_a_killed_worker_is_sent_again_within_seconds(
    empty_db_url: str, tmp_path: Path
) -> None:
    receiver = WebhookReceiver().start()
    receiver.behave("/held", delay=60, times=1)  # the first POST hangs until the worker is gone
    port = free_port()
    key = "KEYhook" + uuid.uuid4().hex
    env = crash_test_env(empty_db_url, port, key, webhook_timeout="30")
    del env["SIGNALPOST_JOB_LEASE_SECONDS"]  # the default lease, as shipped
    api = spawn(["serve", "--no-workers"], env, tmp_path)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, tmp_path)
        client = Telnyx(
            api_key=key, base_url=f"{base}/v2", max_retries=0, _strict_response_validation=True
        )
        profile = client.messaging_profiles.create(
            name="held", whitelisted_destinations=["US"], webhook_url=receiver.url("/held")
        ).data
        assert profile is not None and profile.id
        client.number_orders.create(
            phone_numbers=[{"phone_number": "+13125557300"}], messaging_profile_id=profile.id
        )
        sent = client.messages.send(from_="+13125557300", to="+14155550300", text="held").data
        assert sent is not None and sent.id
        workers.append(spawn(["worker", "--count", "1"], env, tmp_path))
        [first] = receiver.wait_for(lambda rs: len(rs) >= 1, 30)
        workers[0].send_signal(signal.SIGKILL)  # mid-POST: the receiver has not answered
        workers[0].wait(10)
        killed_at = time.time()
        workers.append(spawn(["worker", "--count", "1"], env, tmp_path))

        event_id = first.json()["data"]["id"]

        def repeated(rs: list[Received]) -> bool:
            return sum(r.json()["data"]["id"] == event_id for r in rs) >= 2

        hooks = receiver.wait_for(repeated, LEASE + STARTUP_ALLOWANCE + 10)
        again = [r for r in hooks if r.json()["data"]["id"] == event_id][1]
        waited = again.at - killed_at
        assert waited < LEASE + STARTUP_ALLOWANCE, f"the duplicate came {waited:.1f} s after"
        assert first.json()["data"]["event_type"] == "message.sent"
        assert again.json()["meta"]["attempt"] == first.json()["meta"]["attempt"] == 1
        assert again.json()["data"]["payload"]["id"] == sent.id
    finally:
        stop([*workers, api])
        receiver.stop()
