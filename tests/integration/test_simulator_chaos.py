"""The simulator's chaos setting: read, set through the API and the CLI, and what it does to sends."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import httpx
from telnyx import Telnyx

from tests.conftest import Account, unique_number
from tests.support.messaging import make_sender, wait_final
from tests.support.receiver import WebhookReceiver
from tests.support.server import RunningServer
from tests.support.wait import wait_until


def _chaos(server: RunningServer, key: str, body: dict[str, Any] | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    if body is None:
        return httpx.get(f"{server.base_url}/simulator/chaos", headers=headers)
    return httpx.put(f"{server.base_url}/simulator/chaos", json=body, headers=headers)


def _final_status(client: Telnyx, message_id: str) -> tuple[str, list[str]]:
    msg = wait_final(client, message_id)
    return msg.to[0].status, [e.code for e in msg.errors or []]


def test_chaos_changes_outcomes_and_resets(
    server: RunningServer, account: Account, client: Telnyx, receiver: WebhookReceiver
) -> None:
    assert _chaos(server, account.api_key).json()["data"]["sending_failed"] == 0
    sender = make_sender(client, receiver, unique_number())

    r = _chaos(server, account.api_key, {"sending_failed": 1.0})
    assert r.status_code == 200, r.text
    assert _chaos(server, account.api_key).json()["data"]["sending_failed"] == 1.0
    msg = client.messages.send(from_=sender.number, to="+14156660105", text="chaos").data
    assert msg is not None and msg.id
    assert _final_status(client, msg.id) == ("sending_failed", ["40008"])

    _chaos(server, account.api_key, {"delivery_failed": 1.0})
    msg = client.messages.send(from_=sender.number, to="+14156660115", text="chaos").data
    assert msg is not None and msg.id
    assert _final_status(client, msg.id) == ("delivery_failed", ["40008"])

    _chaos(server, account.api_key, {})
    msg = client.messages.send(from_=sender.number, to="+14156660125", text="calm").data
    assert msg is not None and msg.id
    assert _final_status(client, msg.id) == ("delivered", [])


def test_chaos_from_the_cli_reaches_the_running_server(
    server: RunningServer, account: Account, client: Telnyx, receiver: WebhookReceiver
) -> None:
    sender = make_sender(client, receiver, unique_number())
    db_url = server.settings.database_url
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "signalpost.cli",
            "simulator",
            "chaos",
            "--expired",
            "1",
            "--org",
            account.org.name,
            "--database-url",
            db_url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"^expired +1\.0\b", done.stdout, re.M), done.stdout
    wait_until(lambda: _chaos(server, account.api_key).json()["data"]["expired"] == 1.0, 5)

    def expires() -> bool:
        msg = client.messages.send(from_=sender.number, to="+14156660135", text="cli chaos").data
        assert msg is not None and msg.id
        return _final_status(client, msg.id)[0] == "expired"

    wait_until(expires, 15, interval=0.5)  # the server re-reads the setting within a second
    reset = subprocess.run(
        [
            sys.executable,
            "-m",
            "signalpost.cli",
            "simulator",
            "chaos",
            "--reset",
            "--org",
            account.org.name,
            "--database-url",
            db_url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert reset.returncode == 0 and re.search(r"^expired +0\.0\b", reset.stdout, re.M)


def test_chaos_belongs_to_one_organization(
    server: RunningServer,
    account: Account,
    other_account: Account,
    receiver: WebhookReceiver,
) -> None:
    """A's chaos fails A's messages only: B neither sees it nor has its messages touched by it."""
    a_sender = make_sender(account.client, receiver, unique_number())
    b_sender = make_sender(other_account.client, receiver, unique_number())
    r = _chaos(server, account.api_key, {"sending_failed": 1.0, "extra_latency": 0.5})
    assert r.status_code == 200, r.text

    assert _chaos(server, account.api_key).json()["data"]["sending_failed"] == 1.0
    b_view = _chaos(server, other_account.api_key).json()["data"]
    assert b_view["sending_failed"] == 0 and b_view["extra_latency"] == 0

    a_ids, b_ids = [], []
    for i in range(3):
        a = account.client.messages.send(from_=a_sender.number, to=f"+1415666020{i}", text="a")
        b = other_account.client.messages.send(
            from_=b_sender.number, to=f"+1415666021{i}", text="b"
        )
        assert a.data is not None and a.data.id and b.data is not None and b.data.id
        a_ids.append(a.data.id)
        b_ids.append(b.data.id)
    for mid in a_ids:
        assert _final_status(account.client, mid) == ("sending_failed", ["40008"])
    for mid in b_ids:
        assert _final_status(other_account.client, mid) == ("delivered", [])

    # B's own setting does not change A's either.
    _chaos(server, other_account.api_key, {"expired": 1.0})
    assert _chaos(server, account.api_key).json()["data"]["expired"] == 0
    _chaos(server, other_account.api_key, {})
    _chaos(server, account.api_key, {})


def test_bad_chaos_is_rejected_with_a_pointer(server: RunningServer, account: Account) -> None:
    r = _chaos(server, account.api_key, {"throttled": 1.5})
    assert r.status_code == 422
    assert r.json()["errors"][0]["source"]["pointer"] == "/throttled"
    r = _chaos(server, account.api_key, {"nonsense": 0.1})
    assert r.status_code == 422
    r = httpx.get(f"{server.base_url}/simulator/chaos")
    assert r.status_code == 401
