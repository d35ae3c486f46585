"""What a `signalpost serve` process logs at INFO, read from its output: webhook failures, opt-outs
and opt-ins, scheduled sends firing, chaos changes; an access log without the inbox's polling and
`/metrics` scrapes; JSON lines with `SIGNALPOST_LOG_FORMAT=json`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from telnyx import Telnyx

from tests.support.processes import ready, stop
from tests.support.receiver import WebhookReceiver
from tests.support.server import free_port
from tests.support.wait import wait_until


class Served:
    def __init__(self, tmp: Path, **settings: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.key = "KEYlogs" + uuid.uuid4().hex
        self.err_path, self.out_path = tmp / "stderr.log", tmp / "stdout.log"
        env = {
            **os.environ,
            "SIGNALPOST_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/logs.db",
            "SIGNALPOST_PORT": str(self.port),
            "SIGNALPOST_API_KEY": self.key,
            "SIGNALPOST_SCHEDULE_MIN_LEAD_SECONDS": "0",
            "SIGNALPOST_WEBHOOK_RETRY_BASE": "0.05",
            "SIGNALPOST_WEBHOOK_ATTEMPTS": "2",
            "SIGNALPOST_RATE_LIMITS__ENABLED": "false",
        }
        env.update({f"SIGNALPOST_{k.upper()}": v for k, v in settings.items()})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "signalpost.cli", "serve"],
            env=env,
            cwd=tmp,
            stdout=self.out_path.open("wb"),
            stderr=self.err_path.open("wb"),
        )
        wait_until(lambda: ready(self.base) or self.proc.poll() is not None, 30)
        assert self.proc.poll() is None, self.err_path.read_text()
        self.client = Telnyx(
            api_key=self.key,
            base_url=f"{self.base}/v2",
            max_retries=0,
            _strict_response_validation=True,
        )

    def lines(self) -> list[str]:
        text = self.err_path.read_text() + self.out_path.read_text()
        return [line for line in text.splitlines() if line.strip()]

    def records(self) -> list[dict[str, Any]]:
        """Every line as the JSON object it must be (JSON format only)."""
        return [json.loads(line) for line in self.lines() if not line.startswith("\n")]

    def wait_record(self, **match: Any) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            for r in self.records():
                if all(
                    (v in str(r.get(k, ""))) if isinstance(v, str) else r.get(k) == v
                    for k, v in match.items()
                ):
                    return r
            return None

        return wait_until(found, 20)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    s = Served(tmp_path, log_format="json")
    yield s
    s.client.close()
    stop([s.proc])


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver().start()
    yield r
    r.stop()


def _inbound(served: Served, handset: str, to: str, text: str) -> None:
    r = httpx.post(
        f"{served.base}/simulator/inbound",
        json={"from": handset, "to": to, "text": text},
        headers={"Authorization": f"Bearer {served.key}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text


def test_operator_events_are_logged_as_json(served: Served, receiver: WebhookReceiver) -> None:
    client = served.client
    receiver.behave("/broken", status=500)
    profile = client.messaging_profiles.create(
        name="logs", whitelisted_destinations=["US"], webhook_url=receiver.url("/broken")
    ).data
    assert profile is not None and profile.id
    number = "+13125557001"
    client.number_orders.create(
        phone_numbers=[{"phone_number": number}], messaging_profile_id=profile.id
    )

    client.messages.send(from_=number, to="+13125550100", text="hooks fail")
    failed = served.wait_record(logger="signalpost.webhooks", level="INFO", attempt=1)
    assert failed["url"] == receiver.url("/broken") and failed["status"] == 500
    assert "failed: HTTP 500" in failed["message"]
    last = served.wait_record(logger="signalpost.webhooks", level="WARNING", attempt=2)
    assert "failed for good" in last["message"]

    _inbound(served, "+13125550777", number, "STOP")
    out = served.wait_record(logger="signalpost.optouts", message="opt-out")
    assert out["handset"] == "+13125550777" and out["keyword"] == "STOP"
    _inbound(served, "+13125550777", number, "START")
    back = served.wait_record(logger="signalpost.optouts", message="opt-in")
    assert back["messaging_profile_id"] == profile.id

    send_at = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    scheduled = client.messages.schedule(
        from_=number, to="+13125550101", text="later", send_at=send_at
    ).data
    assert scheduled is not None
    fired = served.wait_record(logger="signalpost.messages", message="fires")
    assert fired["message_id"] == scheduled.id

    chaos = httpx.put(
        f"{served.base}/simulator/chaos",
        json={"throttled": 0.5},
        headers={"Authorization": f"Bearer {served.key}"},
    )
    assert chaos.status_code == 200
    changed = served.wait_record(logger="signalpost.simulator", message="chaos")
    assert changed["chaos"]["throttled"] == 0.5

    for record in served.records():
        assert {"time", "level", "logger", "message"} <= record.keys(), record


def test_access_log_leaves_out_inbox_polling_and_metrics(served: Served) -> None:
    httpx.get(f"{served.base}/metrics")
    httpx.get(f"{served.base}/inbox/api/messages")
    httpx.get(f"{served.base}/inbox/static/inbox.js")
    # an inbox action is logged like any other request
    httpx.post(f"{served.base}/inbox/api/webhooks/x/redeliver")
    httpx.get(f"{served.base}/v2/messaging_profiles", headers={"Authorization": "Bearer x"})
    line = served.wait_record(logger="uvicorn.access", path="/v2/messaging_profiles")
    assert line["status"] == 401 and line["method"] == "GET"
    action = served.wait_record(logger="uvicorn.access", path="/inbox/api/webhooks/x/redeliver")
    assert action["status"] == 401 and action["method"] == "POST"
    reads = [
        r.get("path", "")
        for r in served.records()
        if r.get("logger") == "uvicorn.access" and r.get("method") == "GET"
    ]
    assert not [p for p in reads if p.startswith(("/metrics", "/inbox/"))], reads


def test_text_format_is_the_default(tmp_path: Path) -> None:
    s = Served(tmp_path)
    try:
        httpx.get(f"{s.base}/v2/messaging_profiles", headers={"Authorization": "Bearer x"})
        line = wait_until(
            lambda: next((x for x in s.lines() if "/v2/messaging_profiles" in x), None), 20
        )
        assert " INFO access: " in line and '"GET /v2/messaging_profiles HTTP/1.1" 401' in line
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)
    finally:
        s.client.close()
        stop([s.proc])
