"""The inbox's live updates (a server-sent event stream, filtered like the page it serves), the
webhook attempt view (headers and the exact signed body), and its Redeliver action — on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent, connect_sse
from telnyx import Telnyx

from signalpost.accounts import repository as accounts_repo
from signalpost.accounts import service as accounts
from signalpost.context import AppContext
from signalpost.inbox.live import KEY_CHECK_SECONDS
from signalpost.kit.clock import iso, utcnow
from tests.conftest import Account, unique_number
from tests.integration.test_inbox import COOKIE, detail, login
from tests.support.messaging import Sender, make_sender, wait_final
from tests.support.receiver import WebhookReceiver
from tests.support.server import RunningServer
from tests.support.wait import wait_until


@pytest.fixture
def web(server: RunningServer, account: Account) -> Iterator[httpx.Client]:
    c = login(server, account.api_key)
    yield c
    c.close()


class Stream:
    """A live `/inbox/api/events` stream read on a thread into a queue."""

    def __init__(self, server: RunningServer, key: str, **params: str) -> None:
        self.events: queue.Queue[ServerSentEvent] = queue.Queue()
        self.client = httpx.Client(
            base_url=server.base_url, cookies={COOKIE: key}, timeout=httpx.Timeout(5, read=60)
        )
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.params = params
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        wait_until(lambda: self.status is not None, timeout=10)

    def _read(self) -> None:
        try:
            self._stream()
        except httpx.HTTPError:
            if not self.stop.is_set():  # closed by `close`, or a real failure
                raise

    def _stream(self) -> None:
        headers = {}
        if "last_event_id" in self.params:
            headers["Last-Event-ID"] = self.params.pop("last_event_id")
        with connect_sse(
            self.client, "GET", "/inbox/api/events", params=self.params, headers=headers
        ) as source:
            self.status = source.response.status_code
            self.headers = dict(source.response.headers)
            for event in source.iter_sse():
                self.events.put(event)
                if self.stop.is_set():
                    return

    def until(self, predicate: Any, timeout: float = 15) -> list[dict[str, Any]]:
        """The `messages` items received until one satisfies `predicate` (all of them)."""
        seen: list[dict[str, Any]] = []
        deadline = utcnow().timestamp() + timeout
        while utcnow().timestamp() < deadline:
            try:
                event = self.events.get(timeout=0.2)
            except queue.Empty:
                continue
            if event.event == "messages":
                seen += json.loads(event.data)["items"]
            elif event.event == "message":
                seen.append(json.loads(event.data))
            if any(predicate(i) for i in seen):
                return seen
        raise AssertionError(f"no matching event in {timeout}s; got {len(seen)}")

    def close(self) -> None:
        self.stop.set()
        self.client.close()


@pytest.fixture
def streams() -> Iterator[list[Stream]]:
    opened: list[Stream] = []
    yield opened
    for s in opened:
        s.close()


def send(client: Telnyx, sender: Sender, to: str, text: str) -> str:
    msg = client.messages.send(from_=sender.number, to=to, text=text).data
    assert msg is not None and msg.id
    return msg.id


def test_the_stream_reports_changes_that_match_the_page(
    server: RunningServer,
    account: Account,
    client: Telnyx,
    sender: Sender,
    streams: list[Stream],
) -> None:
    word = uuid.uuid4().hex[:8]
    stream = Stream(server, account.api_key, q=word)
    streams.append(stream)
    assert stream.status == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    ignored = send(client, sender, "+13125550004", "something else")
    wanted = send(client, sender, "+13125550004", f"about {word}")

    seen = stream.until(lambda i: i["id"] == wanted and i["status"] == "delivered")
    assert ignored not in {i["id"] for i in seen}
    last = [i for i in seen if i["id"] == wanted][-1]
    assert f'id="m-{wanted}"' in last["html"] and ">delivered<" in last["html"]


def test_a_reconnecting_stream_misses_nothing(
    server: RunningServer, account: Account, client: Telnyx, sender: Sender, streams: list[Stream]
) -> None:
    """`Last-Event-ID` (what a browser sends when it reconnects) resumes from that cursor."""
    before = iso(utcnow())
    missed = send(client, sender, "+13125550005", "sent while the page was away")
    wait_final(client, missed)
    stream = Stream(server, account.api_key, last_event_id=before)
    streams.append(stream)
    stream.until(lambda i: i["id"] == missed)


def test_a_conversation_stream_reports_only_that_conversation(
    server: RunningServer,
    account: Account,
    web: httpx.Client,
    client: Telnyx,
    sender: Sender,
    streams: list[Stream],
) -> None:
    handset = "+13125550260"
    stream = Stream(server, account.api_key, ours=sender.number, handset=handset)
    streams.append(stream)
    elsewhere = send(client, sender, "+13125550261", "not this one")
    r = web.post("/inbox/api/reply", json={"from": handset, "to": sender.number, "text": "hi"})
    inbound = r.json()["data"]["id"]
    seen = stream.until(lambda i: i["id"] == inbound)
    assert elsewhere not in {i["id"] for i in seen}
    assert 'class="bubble inbound' in [i for i in seen if i["id"] == inbound][-1]["html"]
    assert web.get("/inbox/api/events", params={"ours": sender.number}).status_code == 400


def test_the_stream_needs_a_login(server: RunningServer) -> None:
    r = httpx.get(f"{server.base_url}/inbox/api/events", timeout=10)
    assert r.status_code == 401
    assert r.json()["errors"][0]["code"] == "10009"


def test_a_stream_ends_once_its_key_is_revoked(
    server: RunningServer, account: Account, streams: list[Stream]
) -> None:
    """A revoked key's stream says `logout` and ends within a key check (not after its whole
    lifetime), and the browser's reconnection with that key gets 401."""

    async def add_key(ctx: AppContext) -> str:
        async with ctx.db.transaction() as uow:
            return await accounts.add_api_key(uow, account.org.id)

    key = server.run(add_key)
    stream = Stream(server, key)
    streams.append(stream)
    assert stream.status == 200

    async def revoke(ctx: AppContext) -> int:
        async with ctx.db.transaction() as uow:
            return await accounts_repo.revoke_api_key(uow, key[:10], utcnow())

    assert server.run(revoke) == 1
    revoked_at = time.monotonic()
    names: list[str] = []
    while "logout" not in names:
        names.append(stream.events.get(timeout=KEY_CHECK_SECONDS + 5).event)
    assert time.monotonic() - revoked_at < KEY_CHECK_SECONDS + 5
    stream.thread.join(timeout=5)
    assert not stream.thread.is_alive()  # the server ended the response
    r = httpx.get(f"{server.base_url}/inbox/api/events", cookies={COOKIE: key}, timeout=10)
    assert r.status_code == 401


def test_attempts_show_the_signed_request_and_redeliver_from_the_inbox(
    server: RunningServer,
    account: Account,
    other_account: Account,
    web: httpx.Client,
    client: Telnyx,
    receiver: WebhookReceiver,
    streams: list[Stream],
) -> None:
    flaky = make_sender(client, receiver, unique_number())
    receiver.behave(flaky.hook_path, status=500)
    message_id = send(client, flaky, "+13125550006", "hook me")

    def failed() -> dict[str, Any] | None:
        d = detail(web, message_id)
        hooks = d["webhooks"]
        return d if len(hooks) == 2 and all(w["status"] == "failed" for w in hooks) else None

    d = wait_until(failed, timeout=30)
    sent = next(w for w in d["webhooks"] if w["event_type"] == "message.sent")
    posts = [r for r in receiver.on(flaky.hook_path) if r.json()["data"]["id"] == sent["id"]]
    for attempt, got in zip(sent["attempts"], posts, strict=True):
        # The view shows the headers and the body exactly as the receiver got them.
        assert attempt["signed_body"].encode() == got.body
        assert attempt["signature"] == got.headers["telnyx-signature-ed25519"]
        assert attempt["timestamp"] == got.headers["telnyx-timestamp"]
        assert ["telnyx-timestamp", got.headers["telnyx-timestamp"]] in [
            [k.lower(), v] for k, v in attempt["request_headers"]
        ]
        assert attempt["signature_ok"] is True
    page = web.get(f"/inbox/messages/{message_id}").text
    assert "signature verifies with your public key" in page
    assert f'data-delivery="{sent["id"]}"' in page

    stream = Stream(server, account.api_key, message=message_id)
    streams.append(stream)
    receiver.behave(flaky.hook_path, status=200)
    r = web.post(f"/inbox/api/webhooks/{sent['id']}/redeliver")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["ok"] is True and data["status_code"] == 200
    assert "Redeliver" in data["html"]
    got = receiver.on(flaky.hook_path)[-1]
    assert client.webhooks.unwrap(got.body.decode(), headers=got.headers).data is not None
    after = detail(web, message_id)
    now = next(w for w in after["webhooks"] if w["id"] == sent["id"])
    assert now["status"] == "delivered"
    assert len(now["attempts"]) == len(sent["attempts"]) + 1
    assert now["attempts"][-1]["signed_body"].encode() == got.body
    # The message's page hears of it over its stream.
    stream.until(lambda i: "html" in i and "delivered" in i["html"] and sent["id"] in i["html"])

    other = login(server, other_account.api_key)
    try:
        assert other.post(f"/inbox/api/webhooks/{sent['id']}/redeliver").status_code == 404
    finally:
        other.close()
