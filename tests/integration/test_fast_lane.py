"""The send endpoints' fast lane answers exactly as the full application does.

Two servers share one database: the module's `server` (lane on, the default) and one with the lane
off. Every request goes to both, and the answers must match: status, `x-should-retry`, and the body
with ids and times normalised. Errors the lane leaves to the application (bodies that do not
validate, a content type that is not JSON, …) are in the list too, so a lane that mishandled them
instead of declining would show up here.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from telnyx import Telnyx

from tests.conftest import Account, unique_number
from tests.conftest import test_settings as settings_for
from tests.support.messaging import Sender
from tests.support.server import RunningServer

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)")


@pytest.fixture(scope="module")
def plain_server(database_url: str, server: RunningServer) -> Iterator[RunningServer]:
    running = RunningServer(settings_for(database_url, fast_lane=False, workers=0)).start()
    yield running
    running.stop()


def _normalised(response: httpx.Response) -> tuple[int, str | None, Any]:
    text = TIME.sub("<time>", UUID.sub("<uuid>", response.text))
    try:
        body: Any = httpx.Response(200, content=text).json()
    except ValueError:
        body = text
    return response.status_code, response.headers.get("x-should-retry"), body


def _both(
    server: RunningServer,
    plain: RunningServer,
    path: str,
    *,
    key: str,
    json: Any = None,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[Any, Any]:
    hdrs = {"Authorization": f"Bearer {key}"} if key else {}
    hdrs.update(headers or {})
    answers = []
    for s in (server, plain):
        with httpx.Client(base_url=f"{s.base_url}/v2", timeout=10) as http:
            if content is not None:
                r = http.post(path, content=content, headers=hdrs)
            else:
                r = http.post(path, json=json, headers=hdrs)
        answers.append(_normalised(r))
    return answers[0], answers[1]


def test_answers_match_the_full_application(
    server: RunningServer,
    plain_server: RunningServer,
    account: Account,
    client: Telnyx,
    sender: Sender,
) -> None:
    other = unique_number()
    good = {"from": sender.number, "to": "+13125550100", "text": "hello"}
    cases: list[tuple[str, dict[str, Any]]] = [
        ("/messages", {"json": good}),
        ("/messages", {"json": {**good, "text": "naïve “quotes” — ok", "encoding": "auto"}}),
        ("/messages", {"json": {**good, "webhook_url": "https://example.com/hook"}}),
        ("/messages/long_code", {"json": good}),
        ("/messages/number_pool", {"json": {**good, "messaging_profile_id": sender.profile_id}}),
        ("/messages", {"json": {**good, "to": "12"}}),  # 40310
        ("/messages", {"json": {**good, "from": other}}),  # 40305
        ("/messages", {"json": {**good, "to": "+4915112345678"}}),  # 40309
        ("/messages", {"json": {"from": sender.number, "to": "+13125550100"}}),  # 40316
        ("/messages", {"json": {**good, "text": "x" * 2000}}),  # 40302
        ("/messages", {"json": {**good, "text": "日本", "encoding": "gsm7"}}),
        ("/messages/short_code", {"json": good}),  # a long code on /short_code
        ("/messages/alphanumeric_sender_id", {"json": {**good, "from": "Signal"}}),
        ("/messages", {"json": {"to": "+13125550100"}}),  # validation: no from, no profile
        ("/messages", {"json": {**good, "encoding": "latin1"}}),  # validation
        ("/messages", {"json": [good]}),  # not an object
        ("/messages", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}),
        ("/messages", {"content": b"to=1", "headers": {"Content-Type": "text/plain"}}),
    ]
    for path, kwargs in cases:
        lane, plain = _both(server, plain_server, path, key=account.api_key, **kwargs)
        assert lane == plain, (path, kwargs)
    # Authentication failures.
    for key in ("", "KEYunknown"):
        lane, plain = _both(server, plain_server, "/messages", key=key, json=good)
        assert lane == plain
        assert lane[0] == 401


def test_idempotency_key_through_the_lane(
    server: RunningServer, plain_server: RunningServer, account: Account, sender: Sender
) -> None:
    """The lane and the application share the idempotency records: a repeat on either is a replay."""
    key = str(uuid.uuid4())
    body = {"from": sender.number, "to": "+13125550101", "text": "once"}
    hdrs = {"Authorization": f"Bearer {account.api_key}", "Idempotency-Key": key}
    answers = []
    for s in (server, plain_server, server):
        with httpx.Client(base_url=f"{s.base_url}/v2", timeout=10) as http:
            answers.append(http.post("/messages", json=body, headers=hdrs))
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].json() == answers[1].json() == answers[2].json()
    with httpx.Client(base_url=f"{server.base_url}/v2", timeout=10) as http:
        changed = http.post("/messages", json={**body, "text": "twice"}, headers=hdrs)
    assert changed.status_code == 422
    assert changed.headers["x-should-retry"] == "false"
