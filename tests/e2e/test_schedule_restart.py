"""A scheduled message survives a server restart between scheduling and `send_at`, and fires once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from telnyx import Telnyx

from tests.support.messaging import event_types
from tests.support.processes import ready
from tests.support.receiver import WebhookReceiver
from tests.support.server import free_port
from tests.support.wait import wait_until


def _serve(env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "signalpost.cli", "serve"],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_restart_between_scheduling_and_send_at(tmp_path: Path) -> None:
    receiver = WebhookReceiver().start()
    port = free_port()
    key = "KEYsched" + uuid.uuid4().hex
    env = {
        **os.environ,
        "SIGNALPOST_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/sched.db",
        "SIGNALPOST_PORT": str(port),
        "SIGNALPOST_API_KEY": key,
        "SIGNALPOST_SCHEDULE_MIN_LEAD_SECONDS": "0",
        "SIGNALPOST_LOG_LEVEL": "warning",
    }
    base = f"http://127.0.0.1:{port}"
    server = _serve(env, tmp_path)
    try:
        wait_until(lambda: ready(base), 30)
        client = Telnyx(
            api_key=key, base_url=f"{base}/v2", max_retries=0, _strict_response_validation=True
        )
        profile = client.messaging_profiles.create(
            name="sched", whitelisted_destinations=["US"], webhook_url=receiver.url("/sched")
        ).data
        assert profile is not None and profile.id
        client.number_orders.create(
            phone_numbers=[{"phone_number": "+13125557100"}], messaging_profile_id=profile.id
        )
        at = datetime.now(UTC) + timedelta(seconds=6)
        msg = client.messages.schedule(
            from_="+13125557100", to="+13125550400", text="after restart", send_at=at
        ).data
        assert msg is not None and msg.id
        _stop(server)
        assert event_types(receiver.received, msg.id) == []
        server = _serve(env, tmp_path)
        wait_until(lambda: ready(base), 30)
        receiver.wait_for(lambda rs: "message.finalized" in event_types(rs, msg.id or ""), 30)
        final = client.messages.retrieve(msg.id).data
        assert final is not None and final.to and final.to[0].status == "delivered"
        assert final.sent_at is not None and final.sent_at >= at - timedelta(seconds=0.01)
        assert event_types(receiver.received, msg.id) == ["message.sent", "message.finalized"]
    finally:
        _stop(server)
        receiver.stop()
