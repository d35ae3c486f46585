"""The inbox's search, filters, paging and conversation view through its pages, and the warning
when a handset writes to a number nobody owns (API, inbox and CLI) — on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from telnyx import Telnyx

from signalpost.inbox.service import PAGE_SIZE
from tests.conftest import Account, unique_number
from tests.integration.test_inbox import feed, item, login
from tests.support.messaging import Sender, make_sender, wait_final
from tests.support.receiver import WebhookReceiver
from tests.support.server import RunningServer
from tests.support.wait import wait_until


@pytest.fixture
def web(server: RunningServer, account: Account) -> Iterator[httpx.Client]:
    c = login(server, account.api_key)
    yield c
    c.close()


def listed(web: httpx.Client, **params: str) -> list[str]:
    """The message ids of the inbox page for these filters, in the order shown."""
    r = web.get("/inbox", params=params)
    assert r.status_code == 200, r.text
    return re.findall(r'<li id="m-([^"]+)"', r.text)


def inject(web: httpx.Client, handset: str, to: str, text: str) -> dict[str, Any]:
    r = web.post("/inbox/api/reply", json={"from": handset, "to": to, "text": text})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def send(client: Telnyx, sender: Sender, to: str, text: str) -> str:
    msg = client.messages.send(from_=sender.number, to=to, text=text).data
    assert msg is not None and msg.id
    return msg.id


def test_root_leads_to_the_inbox(server: RunningServer) -> None:
    r = httpx.get(f"{server.base_url}/", follow_redirects=False)
    assert r.status_code == 307
    assert r.headers["location"] == "/inbox"
    landed = httpx.get(f"{server.base_url}/", follow_redirects=True)
    assert landed.url.path == "/inbox/login"


def test_search_and_filters(
    web: httpx.Client, client: Telnyx, receiver: WebhookReceiver, sender: Sender
) -> None:
    word = uuid.uuid4().hex[:8]
    other = make_sender(client, receiver, unique_number())
    handset = "+13125550251"
    a = send(client, sender, handset, f"Invoice {word.upper()} is ready")
    b = send(client, other, "+13125550002", f"about {word}, shipped")
    fail = send(client, sender, "+13125550110", f"{word} will not arrive")
    got = inject(web, handset, sender.number, f"thanks for {word}")["data"]["id"]
    unrelated = send(client, sender, handset, "nothing to see")
    for message_id in (a, b, fail, unrelated):
        wait_final(client, message_id)

    # Text, case-insensitively, newest first; a number fragment matches numbers.
    assert listed(web, q=word) == [got, fail, b, a]
    assert listed(web, q=word.upper()) == [got, fail, b, a]
    assert set(listed(web, q=other.number[-7:])) == {b}
    # A number, on either side of the message.
    assert listed(web, number=handset) == [unrelated, got, a]
    assert listed(web, number=handset, q=word) == [got, a]
    assert listed(web, q=word, direction="inbound") == [got]
    assert listed(web, q=word, direction="outbound") == [fail, b, a]
    assert listed(web, q=word, status="delivered") == [b, a]
    assert listed(web, q=word, status="failed") == [fail]
    assert listed(web, q=word, status="delivery_failed") == [fail]
    assert listed(web, q=word, status="received") == [got]
    assert listed(web, q=word, profile=other.profile_id) == [b]
    today = datetime.now(UTC).date()
    assert listed(web, q=word, since=str(today), until=str(today)) == [got, fail, b, a]
    assert listed(web, q=word, since=str(today + timedelta(days=1))) == []
    assert listed(web, q=word, until=str(today - timedelta(days=1))) == []
    page = web.get("/inbox", params={"q": "no such text " + word})
    assert "No messages match" in page.text
    # What was searched for is shown again in the form.
    filtered = web.get("/inbox", params={"q": word, "status": "failed"}).text
    assert f'value="{word}"' in filtered
    assert '<option value="failed" selected>' in filtered


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"status": "lost"}, "status must be one of"),
        ({"direction": "sideways"}, "direction must be inbound or outbound"),
        ({"number": "call me"}, "number must be a +E.164"),
        ({"since": "last tuesday"}, "since must be a date"),
        ({"before": "garbage"}, "before must be a cursor"),
        ({"q": "x" * 201}, "q must be at most"),
    ],
)
def test_a_bad_filter_is_shown_not_a_500(
    web: httpx.Client, params: dict[str, str], named: str
) -> None:
    r = web.get("/inbox", params=params)
    assert r.status_code == 400
    assert named in r.text
    assert 'id="messages"' in r.text  # the page still works
    if "before" not in params:  # the stream has no pages
        events = web.get("/inbox/api/events", params=params)
        assert events.status_code == 400
        assert events.json()["errors"][0]["code"] == "10015"


def test_pages_of_results_follow_each_other(
    web: httpx.Client, client: Telnyx, sender: Sender
) -> None:
    word = uuid.uuid4().hex[:8]
    sent = [send(client, sender, "+13125550003", f"{word} #{i}") for i in range(PAGE_SIZE + 5)]
    first = web.get("/inbox", params={"q": word})
    ids = re.findall(r'<li id="m-([^"]+)"', first.text)
    assert ids == list(reversed(sent))[:PAGE_SIZE]
    older = re.search(r'id="older" href="([^"]+)"', first.text)
    assert older is not None
    second = web.get(older.group(1).replace("&amp;", "&"))
    assert second.status_code == 200
    rest = re.findall(r'<li id="m-([^"]+)"', second.text)
    assert rest == list(reversed(sent))[PAGE_SIZE:]
    assert 'id="older"' not in second.text
    assert 'data-paged="1"' in second.text


def test_conversation_of_our_number_and_a_handset(
    web: httpx.Client, client: Telnyx, receiver: WebhookReceiver, sender: Sender
) -> None:
    handset, stranger = "+13125550252", "+13125550253"
    other = make_sender(client, receiver, unique_number())
    first = send(client, sender, handset, "Are you coming?")
    wait_final(client, first)
    reply = inject(web, handset, sender.number, "Yes <b>on my way</b>")["data"]["id"]
    last = send(client, sender, handset, "Great")
    wait_final(client, last)
    send(client, sender, stranger, "not in this conversation")
    send(client, other, handset, "from our other number")
    inject(web, handset, other.number, "to our other number")

    page = web.get(f"/inbox/conversations/{sender.number}/{handset}")
    assert page.status_code == 200
    bubbles = re.findall(r'<li id="b-([^"]+)"[^>]*class="bubble (\w+)', page.text)
    assert bubbles == [(first, "outbound"), (reply, "inbound"), (last, "outbound")]
    assert "Yes &lt;b&gt;on my way&lt;/b&gt;" in page.text
    assert 'name="from" value="' + handset in page.text  # the composer writes as the handset
    # Each row of the list links to its conversation.
    row = item(feed(web), last)
    assert row is not None
    assert f'href="/inbox/conversations/{sender.number.replace("+", "%2B")}/' in row["html"]


def test_injecting_to_a_number_nobody_owns_warns_and_stores(
    server: RunningServer, account: Account, web: httpx.Client, sender: Sender, client: Telnyx
) -> None:
    auth = {"Authorization": f"Bearer {account.api_key}"}
    nobody = "+19995550001"
    r = httpx.post(
        f"{server.base_url}/simulator/inbound",
        json={"from": "+13125550254", "to": nobody, "text": "anyone?"},
        headers=auth,
    )
    assert r.status_code == 200
    [warning] = r.json()["warnings"]
    assert warning["code"] == "unowned_destination"
    assert nobody in warning["detail"] and "no webhook" in warning["detail"]
    stored = client.messages.retrieve(r.json()["data"]["id"]).data
    assert stored is not None and stored.text == "anyone?"

    fine = inject(web, "+13125550254", sender.number, "hello")
    assert "warnings" not in fine
    # A number of ours on no messaging profile.
    bare = unique_number()
    client.number_orders.create(phone_numbers=[{"phone_number": bare}])
    [no_profile] = inject(web, "+13125550254", bare, "hi")["warnings"]
    assert "no messaging profile" in no_profile["detail"]

    args = ["inbound", "--from", "+13125550254", "--to", nobody, "--text", "via the cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNALPOST_", "TELNYX_"))}
    done = subprocess.run(
        [sys.executable, "-m", "signalpost.cli", *args],
        env={**env, "TELNYX_BASE_URL": f"{server.base_url}/v2", "TELNYX_API_KEY": account.api_key},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "warning:" in done.stderr and nobody in done.stderr
    message_id = done.stdout.split()[0]
    assert client.messages.retrieve(message_id).data is not None


def test_feed_items_carry_media_for_previews(web: httpx.Client, sender: Sender) -> None:
    wait_until(lambda: feed(web) is not None)
    r = web.post(
        "/inbox/api/reply",
        json={"from": "+13125550255", "to": sender.number, "text": "no media here"},
    )
    assert r.status_code == 200
    found = wait_until(lambda: item(feed(web), r.json()["data"]["id"]))
    assert found["media"] == []
    assert found["ours"] == sender.number and found["handset"] == "+13125550255"


def test_conversations_index_lists_each_pair_once_most_recent_first(
    web: httpx.Client, client: Telnyx, sender: Sender
) -> None:
    quiet, busy = "+13125550256", "+13125550257"
    first = send(client, sender, quiet, "hello quiet")
    wait_final(client, first)
    send(client, sender, busy, "hello busy")
    inject(web, busy, sender.number, "busy answers")
    page = web.get("/inbox/conversations")
    assert page.status_code == 200
    ours = sender.number.replace("+", "%2B")
    links = re.findall(rf'href="/inbox/conversations/{re.escape(ours)}/([^"]+)"', page.text)
    assert links[:2] == ["%2B13125550257", "%2B13125550256"]
    assert links.count("%2B13125550257") == 1
    assert "busy answers" in page.text and "You: hello quiet" in page.text
