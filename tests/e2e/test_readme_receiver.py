"""The README's webhook receiver, run as written: its code is taken from README.md, started with
uvicorn in a process of its own against a running signalpost, and must verify a real signed
`message.received`, answer the handset through the SDK, and refuse a forged webhook. A README
edit that breaks the example breaks this test."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Account, unique_number
from tests.support.processes import stop
from tests.support.server import RunningServer, free_port
from tests.support.wait import wait_until

README = Path(__file__).resolve().parents[2] / "README.md"
HEADING = "### A webhook receiver that verifies and auto-replies"


@pytest.fixture(scope="module")
def settings_overrides() -> dict[str, Any]:
    # The SDK's first `webhooks.unwrap` in a process builds its event types (over a second on a
    # busy machine): the receiver's first answer may take that long.
    return {"webhook_timeout": 10.0}


def readme_blocks() -> dict[str, str]:
    """The receiver section's code blocks by language (`sh`, `python`)."""
    text = README.read_text()
    assert HEADING in text, "the README lost its webhook receiver section"
    section = text.split(HEADING, 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    return dict(re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S))


def test_the_readme_installs_the_webhooks_extra() -> None:
    install = readme_blocks()["sh"]
    assert "'telnyx[webhooks]'" in install
    assert "fastapi" in install and "uvicorn" in install


@pytest.fixture
def readme_receiver(tmp_path: Path, server: RunningServer, account: Account) -> Iterator[str]:
    """The README's receiver.py under uvicorn; yields its webhook URL."""
    (tmp_path / "receiver.py").write_text(readme_blocks()["python"])
    port = free_port()
    env = {
        **os.environ,
        "TELNYX_BASE_URL": f"{server.base_url}/v2",
        "TELNYX_API_KEY": account.api_key,
        "TELNYX_PUBLIC_KEY": account.org.public_key,
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "receiver:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        try:
            return httpx.get(base, timeout=1).status_code == 404
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, timeout=30)
        yield f"{base}/hooks"
    finally:
        stop([proc])  # type: ignore[list-item]


def test_the_readme_receiver_verifies_and_auto_replies(
    server: RunningServer, account: Account, readme_receiver: str
) -> None:
    client = account.client
    profile = client.messaging_profiles.create(
        name="readme receiver", whitelisted_destinations=["US"], webhook_url=readme_receiver
    ).data
    assert profile is not None and profile.id
    number = unique_number()
    client.number_orders.create(
        phone_numbers=[{"phone_number": number}], messaging_profile_id=profile.id
    )
    handset = "+13125550250"  # a simulated handset that never answers
    auth = {"Authorization": f"Bearer {account.api_key}"}
    r = httpx.post(
        f"{server.base_url}/simulator/inbound",
        json={"from": handset, "to": number, "text": "hello there"},
        headers=auth,
        timeout=10,
    )
    assert r.status_code == 200, r.text
    inbound_id = r.json()["data"]["id"]

    def reply() -> dict[str, object] | None:
        feed = httpx.get(f"{server.base_url}/inbox/api/messages", headers=auth, timeout=10)
        return next(
            (
                m
                for m in feed.json()["data"]
                if m["direction"] == "outbound" and m["from"] == number and m["to"] == handset
            ),
            None,
        )

    answer = wait_until(reply, timeout=30)
    assert answer["text"] == "You said: hello there"

    def delivered() -> bool:
        received = [
            d
            for d in client.webhook_deliveries.list()
            if d.webhook and d.webhook.event_type == "message.received"
        ]
        assert len(received) == 1 and received[0].webhook is not None
        assert received[0].webhook.payload == {**received[0].webhook.payload, "id": inbound_id}
        return received[0].status == "delivered"  # the receiver answered 2xx

    wait_until(delivered, timeout=15)

    # A forged webhook (no valid signature) is refused and answered with nothing sent.
    forged = httpx.post(
        readme_receiver,
        content=b'{"data":{"event_type":"message.received"}}',
        headers={"telnyx-signature-ed25519": "AAAA", "telnyx-timestamp": "1"},
        timeout=10,
    )
    assert forged.status_code == 400
