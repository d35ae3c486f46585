"""The web inbox: login with an API key, live change feed, message detail with webhook attempts,
"reply as handset", isolation between organizations, and escaping of message content."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from telnyx import Telnyx

from signalpost.context import AppContext
from signalpost.inbox import repository as inbox_repo
from signalpost.kit.clock import iso, utcnow
from tests import conftest
from tests.conftest import Account, unique_number
from tests.support.messaging import FINAL, Sender, make_sender
from tests.support.receiver import WebhookReceiver
from tests.support.server import RunningServer
from tests.support.wait import wait_until

COOKIE = "signalpost_inbox_key"


def login(server: RunningServer, key: str) -> httpx.Client:
    """A browser-like client holding the inbox cookie of `key`."""
    web = httpx.Client(base_url=server.base_url, timeout=10)
    r = web.post("/inbox/login", data={"api_key": key, "next": "/inbox"})
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/inbox"
    assert web.cookies.get(COOKIE) == key
    return web


@pytest.fixture
def web(server: RunningServer, account: Account) -> Iterator[httpx.Client]:
    c = login(server, account.api_key)
    yield c
    c.close()


def feed(web: httpx.Client, after: str | None = None) -> dict[str, Any]:
    r = web.get("/inbox/api/messages", params={"after": after} if after else None)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def item(body: dict[str, Any], message_id: str) -> dict[str, Any] | None:
    return next((m for m in body["data"] if m["id"] == message_id), None)


def detail(web: httpx.Client, message_id: str) -> dict[str, Any]:
    r = web.get(f"/inbox/api/messages/{message_id}")
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


# --- login --------------------------------------------------------------------------------------


def test_login_sets_a_strict_httponly_cookie_and_renders_the_inbox(
    server: RunningServer, account: Account
) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as anon:
        r = anon.get("/inbox")
        assert r.status_code == 303
        assert r.headers["location"] == "/inbox/login?next=/inbox"
        page = anon.get("/inbox/login")
        assert page.status_code == 200
        assert 'name="api_key"' in page.text
        assert page.headers["content-type"].startswith("text/html")

        r = anon.post("/inbox/login", data={"api_key": account.api_key, "next": "/inbox"})
        assert r.status_code == 303
        cookie = r.headers["set-cookie"]
        assert f"{COOKIE}={account.api_key}" in cookie
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        assert "Path=/inbox" in cookie

        page = anon.get("/inbox")
        assert page.status_code == 200
        assert account.org.name in page.text
        assert 'id="messages"' in page.text
        assert 'src="/inbox/static/inbox.js"' in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]

        script = anon.get("/inbox/static/inbox.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
        assert "/inbox/api/messages" in script.text
        assert anon.get("/inbox/static/inbox.css").status_code == 200
        assert anon.get("/inbox/static/..%2F..%2Fapi.py").status_code == 404

        r = anon.post("/inbox/logout")
        assert r.status_code == 303
        assert anon.get("/inbox").status_code == 303


def test_bad_or_missing_key_gets_the_login_page_or_401(
    server: RunningServer, account: Account
) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as anon:
        r = anon.post("/inbox/login", data={"api_key": "KEYnot-a-real-key"})
        assert r.status_code == 401
        assert "unknown or revoked" in r.text
        assert COOKIE not in r.headers.get("set-cookie", "")
        r = anon.post("/inbox/login", data={"api_key": ""})
        assert r.status_code == 401
        assert 'name="api_key"' in r.text

        r = anon.get("/inbox/api/messages")
        assert r.status_code == 401
        assert r.json()["errors"][0]["code"] == "10009"
        r = anon.get("/inbox/api/messages", headers={"Authorization": "Bearer KEYwrong"})
        assert r.status_code == 401
        r = anon.get("/inbox/api/messages", headers={"Authorization": f"Bearer {account.api_key}"})
        assert r.status_code == 200

    with httpx.Client(
        base_url=server.base_url, timeout=10, cookies={COOKIE: "KEYforged"}
    ) as forged:
        r = forged.get("/inbox/messages/anything")
        assert r.status_code == 303
        assert r.headers["location"].startswith("/inbox/login")
        assert f'{COOKIE}=""' in r.headers["set-cookie"]  # the stale cookie is cleared
        assert forged.get("/inbox/api/messages").status_code == 401
        reply = forged.post("/inbox/api/reply", json={"from": "+13125550300", "to": "+1312"})
        assert reply.status_code == 401


def test_login_only_redirects_inside_the_inbox(server: RunningServer, account: Account) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as anon:
        for target in ("//evil.example/", "https://evil.example/inbox", "/v2/messages"):
            r = anon.post("/inbox/login", data={"api_key": account.api_key, "next": target})
            assert r.headers["location"] == "/inbox", target
        r = anon.post(
            "/inbox/login", data={"api_key": account.api_key, "next": "/inbox/messages/x"}
        )
        assert r.headers["location"] == "/inbox/messages/x"


# --- live feed ----------------------------------------------------------------------------------


def test_feed_reports_new_messages_and_their_status_changes(
    web: httpx.Client, client: Telnyx, sender: Sender
) -> None:
    cursor = feed(web)["meta"]["cursor"]
    msg = client.messages.send(from_=sender.number, to="+13125550004", text="watch me").data
    assert msg is not None and msg.id
    message_id = msg.id

    seen: list[str] = []

    def delivered_with_webhooks() -> dict[str, Any] | None:
        nonlocal cursor
        body = feed(web, cursor)
        cursor = body["meta"]["cursor"]
        found = item(body, message_id)
        if found is None:
            return None
        if not seen or seen[-1] != found["status"]:
            seen.append(found["status"])
        done = found["status"] in FINAL and found["webhooks"]["delivered"] >= 2
        return found if done else None

    found = wait_until(delivered_with_webhooks)
    assert seen[-1] == "delivered"
    assert found["direction"] == "outbound"
    assert found["from"] == sender.number
    assert found["to"] == "+13125550004"
    assert found["text"] == "watch me"
    assert found["type"] == "SMS"
    assert found["webhooks"] == {"total": 2, "delivered": 2, "failed": 0, "pending": 0}
    assert f'id="m-{message_id}"' in found["html"]
    assert ">delivered<" in found["html"]

    # Once quiet, a later cursor no longer reports the message.
    def quiet() -> bool:
        nonlocal cursor
        body = feed(web, cursor)
        cursor = body["meta"]["cursor"]
        return item(body, message_id) is None

    wait_until(quiet, timeout=10)


def test_feed_reports_failures_of_messages_without_webhooks(
    web: httpx.Client, client: Telnyx
) -> None:
    profile = client.messaging_profiles.create(
        name="no webhooks", whitelisted_destinations=["US"]
    ).data
    assert profile is not None and profile.id
    number = unique_number()
    client.number_orders.create(
        phone_numbers=[{"phone_number": number}], messaging_profile_id=profile.id
    )
    cursor = feed(web)["meta"]["cursor"]
    msg = client.messages.send(from_=number, to="+13125550110", text="doomed").data
    assert msg is not None and msg.id
    message_id = msg.id

    def failed() -> dict[str, Any] | None:
        nonlocal cursor
        body = feed(web, cursor)
        cursor = body["meta"]["cursor"]
        found = item(body, message_id)
        return found if found and found["status"] == "delivery_failed" else None

    found = wait_until(failed)
    assert found["error"] and found["error"].startswith("40008")
    assert found["status_class"] == "failed"
    assert found["webhooks"]["total"] == 0
    assert "40008" in found["html"]
    page = web.get(f"/inbox/messages/{message_id}")
    assert page.status_code == 200
    assert "40008" in page.text
    assert "No webhooks for this message" in page.text
    assert detail(web, message_id)["message"]["errors"][0]["code"] == "40008"


def test_bad_cursor_is_a_400(web: httpx.Client) -> None:
    r = web.get("/inbox/api/messages", params={"after": "yesterday-ish"})
    assert r.status_code == 400
    assert r.json()["errors"][0]["source"] == {"parameter": "after"}


# --- detail ------------------------------------------------------------------------------------


def test_detail_shows_the_api_object_and_every_webhook_attempt(
    server: RunningServer,
    account: Account,
    web: httpx.Client,
    client: Telnyx,
    receiver: WebhookReceiver,
) -> None:
    flaky = make_sender(client, receiver, unique_number())
    receiver.behave(flaky.hook_path, status=503)
    msg = client.messages.send(from_=flaky.number, to="+13125550005", text="retry me").data
    assert msg is not None and msg.id
    message_id = msg.id

    def failed_attempts() -> dict[str, Any] | None:
        d = detail(web, message_id)
        sent = [w for w in d["webhooks"] if w["event_type"] == "message.sent"]
        retried = sent and len(sent[0]["attempts"]) >= 2
        return (
            d
            if retried and len(d["webhooks"]) == 2 and d["summary"]["status"] == "delivered"
            else None
        )

    before = wait_until(failed_attempts)
    flipped = utcnow()
    receiver.behave(flaky.hook_path, status=200)

    def all_delivered() -> dict[str, Any] | None:
        d = detail(web, message_id)
        hooks = d["webhooks"]
        done = len(hooks) == 2 and all(w["status"] == "delivered" for w in hooks)
        return d if done and d["summary"]["status"] == "delivered" else None

    d = wait_until(all_delivered, timeout=30)
    # The change feed sees a message whose only change is a later webhook attempt.
    assert before["summary"]["updated_at"] < iso(flipped)
    assert all(w["occurred_at"] < iso(flipped) for w in before["webhooks"])

    async def changed(ctx: AppContext) -> set[str]:
        async with ctx.db.transaction() as uow:
            return await inbox_repo.changed_message_ids(uow, account.org.id, flipped)

    assert message_id in server.run(changed)
    api_view = client.messages.with_raw_response.retrieve(message_id).json()["data"]
    assert d["message"] == api_view
    sent = next(w for w in d["webhooks"] if w["event_type"] == "message.sent")
    codes = [a["status_code"] for a in sent["attempts"]]
    assert codes[:2] == [503, 503]
    assert codes[-1] == 200
    assert [a["attempt"] for a in sent["attempts"]] == list(range(1, len(codes) + 1))
    assert sent["attempts"][0]["url"] == receiver.url(flaky.hook_path)
    assert sent["body"]["event_type"] == "message.sent"
    assert sent["body"]["payload"]["id"] == message_id

    page = web.get(f"/inbox/messages/{message_id}")
    assert page.status_code == 200
    assert "message.sent" in page.text
    assert "message.finalized" in page.text
    assert "<td>503</td>" in page.text
    assert "<td>200</td>" in page.text
    assert f"&#34;id&#34;: &#34;{message_id}&#34;" in page.text  # the JSON object, escaped


def test_unknown_message_is_404(web: httpx.Client) -> None:
    assert web.get("/inbox/messages/no-such-id").status_code == 404
    r = web.get("/inbox/api/messages/no-such-id")
    assert r.status_code == 404
    assert r.json()["errors"][0]["code"] == "10005"


# --- isolation -----------------------------------------------------------------------------------


def test_another_organization_sees_none_of_the_messages(
    server: RunningServer,
    web: httpx.Client,
    client: Telnyx,
    sender: Sender,
    other_account: Account,
) -> None:
    msg = client.messages.send(from_=sender.number, to="+13125550006", text="for my eyes").data
    assert msg is not None and msg.id
    message_id = msg.id
    wait_until(lambda: item(feed(web), message_id))

    other = login(server, other_account.api_key)
    try:
        page = other.get("/inbox")
        assert page.status_code == 200
        assert other_account.org.name in page.text
        assert message_id not in page.text
        assert "for my eyes" not in page.text
        assert item(feed(other), message_id) is None
        assert item(feed(other, "2000-01-01T00:00:00.000Z"), message_id) is None
        assert other.get(f"/inbox/messages/{message_id}").status_code == 404
        assert other.get(f"/inbox/api/messages/{message_id}").status_code == 404
    finally:
        other.close()


# --- reply as handset ---------------------------------------------------------------------------


def test_reply_as_handset_arrives_as_an_inbound_message(
    web: httpx.Client, sender: Sender, receiver: WebhookReceiver
) -> None:
    cursor = feed(web)["meta"]["cursor"]
    r = web.post(
        "/inbox/api/reply",
        json={"from": "+13125550301", "to": sender.number, "text": "hello from a handset"},
    )
    assert r.status_code == 200, r.text
    inbound = r.json()["data"]
    assert inbound["direction"] == "inbound"
    assert inbound["from"]["phone_number"] == "+13125550301"

    found = wait_until(lambda: item(feed(web, cursor), inbound["id"]))
    assert found["direction"] == "inbound"
    assert found["text"] == "hello from a handset"
    assert found["status"] == "received"

    receiver.wait_for(lambda rs: any(x.path == sender.hook_path for x in rs))
    d = wait_until(
        lambda: (lambda d: d if d["webhooks"] and d["webhooks"][0]["attempts"] else None)(
            detail(web, inbound["id"])
        )
    )
    assert d["webhooks"][0]["event_type"] == "message.received"

    bad = web.post(
        "/inbox/api/reply", json={"from": "not-a-number", "to": sender.number, "text": "x"}
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["source"]["pointer"] == "/from"
    empty = web.post("/inbox/api/reply", json={"from": "+13125550302", "to": sender.number})
    assert empty.status_code == 400
    assert empty.json()["errors"][0]["code"] == "40316"


# --- escaping --------------------------------------------------------------------------------------


def test_message_content_is_escaped_everywhere(
    web: httpx.Client, client: Telnyx, sender: Sender
) -> None:
    evil = "<script>alert('pwned')</script> & <img src=x onerror=alert(1)>"
    msg = client.messages.send(from_=sender.number, to="+13125550007", text=evil).data
    assert msg is not None and msg.id
    message_id = msg.id
    r = web.post(
        "/inbox/api/reply", json={"from": "+13125550303", "to": sender.number, "text": evil}
    )
    assert r.status_code == 200, r.text
    inbound_id = r.json()["data"]["id"]

    row = wait_until(lambda: item(feed(web), message_id))
    assert row["text"] == evil  # the JSON carries the text as sent ...
    for html in (
        row["html"],
        web.get("/inbox").text,
        web.get(f"/inbox/messages/{message_id}").text,
    ):
        # ... every HTML rendering escapes it
        assert "<script>alert" not in html
        assert "<img src=x" not in html
        assert "&lt;script&gt;alert(" in html
    assert "&lt;script&gt;" in detail(web, inbound_id)["html"]
    assert "<script>alert" not in web.get(f"/inbox/messages/{inbound_id}").text


def test_the_inbox_reads_without_the_write_lock_on_sqlite(tmp_path: Path) -> None:
    """The inbox only reads, outside the write turns: while another connection holds SQLite's
    write lock, its pages, feed and stream still answer at once (in units of work they waited
    for that lock, and a long search held up every send while it ran)."""
    path = tmp_path / "inbox.db"
    own = RunningServer(conftest.test_settings(f"sqlite+aiosqlite:///{path}")).start()
    try:
        _, key = own.new_organization("inbox-reads")
        writer = sqlite3.connect(path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        try:
            web = login(own, key)
            pages = [web.get(p, timeout=5) for p in ("/inbox", "/inbox/conversations")]
            listed = web.get("/inbox/api/messages", timeout=5)
            with web.stream("GET", "/inbox/api/events", timeout=5) as stream:
                lines = stream.iter_lines()
                first = list(iter(lambda: next(lines), ""))  # the first event's fields
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        assert [p.status_code for p in pages] == [200, 200]
        assert listed.status_code == 200 and listed.json()["data"] == []
        assert stream.status_code == 200 and "event: ready" in first
    finally:
        own.stop()
