"""Receiving messages: handsets (injected and simulated), on-net traffic, keywords and auto-replies."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import telnyx
from sqlalchemy import func, select
from telnyx import Telnyx

from signalpost.context import AppContext
from signalpost.models import jobs, messages, webhook_events
from signalpost.optouts.keywords import DEFAULT_TEXTS
from tests.conftest import Account, unique_number
from tests.support.messaging import Sender, make_sender
from tests.support.receiver import Received, WebhookReceiver
from tests.support.server import RunningServer
from tests.support.wait import wait_until

_handsets = iter(range(300, 10_000))


def handset(area: str = "312") -> str:
    """A handset off this server (555-03xx and up: neither a magic outcome nor a simulated handset)."""
    return f"+1{area}555{next(_handsets):04d}"


def inject(
    server: RunningServer,
    account: Account,
    from_: str,
    to: str,
    text: str | None = None,
    **extra: Any,
) -> httpx.Response:
    body: dict[str, Any] = {"from": from_, "to": to, **extra}
    if text is not None:
        body["text"] = text
    return httpx.post(
        f"{server.base_url}/simulator/inbound",
        json=body,
        headers={"Authorization": f"Bearer {account.api_key}"},
        timeout=10,
    )


def received_events(hooks: list[Received], event_type: str) -> list[dict[str, Any]]:
    return [
        r.json()["data"] for r in hooks if r.json().get("data", {}).get("event_type") == event_type
    ]


def inbound_event(receiver: WebhookReceiver, path: str, message_id: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        for event in received_events(receiver.on(path), "message.received"):
            if event["payload"]["id"] == message_id:
                return event
        return None

    return wait_until(find, 15)


def outbound_events_to(
    receiver: WebhookReceiver, path: str, to: str, event_type: str
) -> list[dict[str, Any]]:
    return [
        e["payload"]
        for e in received_events(receiver.on(path), event_type)
        if e["payload"]["direction"] == "outbound" and e["payload"]["to"][0]["phone_number"] == to
    ]


def wait_auto_reply(
    receiver: WebhookReceiver, sender: Sender, to: str, count: int = 1
) -> list[dict[str, Any]]:
    """The auto-replies sent to `to`, once `count` of them are finalized."""

    def done() -> list[dict[str, Any]] | None:
        found = outbound_events_to(receiver, sender.hook_path, to, "message.finalized")
        return found if len(found) >= count else None

    return wait_until(done, 15)


def count_rows(server: RunningServer, table: Any, *where: Any) -> int:
    async def go(ctx: AppContext) -> int:
        async with ctx.db.transaction() as uow:
            q = select(func.count()).select_from(table).where(*where)
            return int((await uow.conn.execute(q)).scalar_one())

    return server.run(go)


# --- receiving ----------------------------------------------------------------------------------


def test_inbound_message_is_stored_and_delivered_as_signed_webhook(
    server: RunningServer,
    account: Account,
    client: Telnyx,
    sender: Sender,
    receiver: WebhookReceiver,
) -> None:
    phone = handset()
    r = inject(server, account, phone, sender.number, "Hello there")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["direction"] == "inbound"
    assert data["autoresponse_type"] is None

    msg = client.messages.retrieve(data["id"]).data
    assert msg is not None
    assert msg.direction == "inbound"
    assert msg.type == "SMS"
    assert msg.text == "Hello there"
    assert msg.organization_id == account.org.id
    assert msg.messaging_profile_id == sender.profile_id

    event = inbound_event(receiver, sender.hook_path, data["id"])
    hook = next(h for h in receiver.on(sender.hook_path) if h.json()["data"]["id"] == event["id"])
    unwrapped = client.webhooks.unwrap(hook.body.decode(), headers=hook.headers)
    assert unwrapped.data is not None
    payload = event["payload"]
    assert payload["from"]["phone_number"] == phone
    assert payload["from"]["status"] == "received"
    assert payload["to"][0]["phone_number"] == sender.number
    assert payload["autoresponse_type"] is None
    assert "sent_at" not in payload and "completed_at" not in payload
    assert payload["valid_until"] is None


JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 300


@pytest.fixture(scope="module")
def media_url() -> Iterator[str]:
    """A media server: GET /cat.jpg answers a small JPEG, anything else 404."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/cat.jpg":
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("content-type", "image/jpeg")
            self.send_header("content-length", str(len(JPEG)))
            self.end_headers()
            self.wfile.write(JPEG)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_inbound_mms_carries_media_with_hash_key(
    server: RunningServer,
    account: Account,
    client: Telnyx,
    sender: Sender,
    receiver: WebhookReceiver,
    media_url: str,
) -> None:
    r = inject(
        server,
        account,
        handset(),
        sender.number,
        "look",
        media_urls=[f"{media_url}/cat.jpg"],
        subject="Cat",
    )
    assert r.status_code == 200, r.text
    payload = inbound_event(receiver, sender.hook_path, r.json()["data"]["id"])["payload"]
    assert payload["type"] == "MMS"
    assert payload["subject"] == "Cat"
    assert payload["media"] == [
        {
            "url": f"{media_url}/cat.jpg",
            "content_type": "image/jpeg",
            "hash_sha256": hashlib.sha256(JPEG).hexdigest(),
            "size": len(JPEG),
        }
    ]
    msg = client.messages.retrieve(r.json()["data"]["id"]).data
    assert msg is not None and msg.media and msg.media[0].size == len(JPEG)

    missing = inject(
        server, account, handset(), sender.number, media_urls=[f"{media_url}/gone.png"]
    )
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["code"] == "40317"
    assert missing.json()["errors"][0]["source"] == {"pointer": "/media_urls/0"}


def test_message_to_a_number_without_profile_or_owner_is_stored_without_webhook(
    server: RunningServer,
    account: Account,
    other_account: Account,
    client: Telnyx,
    receiver: WebhookReceiver,
) -> None:
    theirs = make_sender(other_account.client, receiver, unique_number())
    for to in (unique_number(), theirs.number):
        r = inject(server, account, handset(), to, "anyone there?")
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert data["messaging_profile_id"] is None
        assert data["organization_id"] == account.org.id
        assert client.messages.retrieve(data["id"]).data is not None
        assert count_rows(server, webhook_events, webhook_events.c.message_id == data["id"]) == 0
    # The owner of the other number saw nothing.
    assert received_events(receiver.on(theirs.hook_path), "message.received") == []


def test_injection_is_validated(server: RunningServer, account: Account, sender: Sender) -> None:
    r = inject(server, account, "12345x", sender.number, "hi")
    assert r.status_code == 422
    assert r.json()["errors"][0]["source"] == {"pointer": "/from"}
    r = inject(server, account, handset(), sender.number)
    assert r.status_code == 400
    assert r.json()["errors"][0]["code"] == "40316"
    r = httpx.post(
        f"{server.base_url}/simulator/inbound",
        json={"from": handset(), "to": sender.number, "text": "x"},
    )
    assert r.status_code == 401


# --- keywords -----------------------------------------------------------------------------------


def test_stop_blocks_the_profile_and_start_lifts_it(
    server: RunningServer,
    account: Account,
    client: Telnyx,
    sender: Sender,
    receiver: WebhookReceiver,
) -> None:
    second = unique_number()
    client.number_orders.create(
        phone_numbers=[{"phone_number": second}], messaging_profile_id=sender.profile_id
    )
    phone = handset()

    r = inject(server, account, phone, sender.number, "Stop")
    assert r.status_code == 200, r.text
    stop_id = r.json()["data"]["id"]
    assert r.json()["data"]["autoresponse_type"] == "STOP"
    event = inbound_event(receiver, sender.hook_path, stop_id)
    assert event["payload"]["autoresponse_type"] == "STOP"
    reply = wait_auto_reply(receiver, sender, phone)[0]
    assert reply["from"]["phone_number"] == sender.number
    assert reply["text"] == DEFAULT_TEXTS["stop"]
    assert reply["to"][0]["status"] == "delivered"

    optouts = list(
        client.messaging_optouts.list(filter={"messaging_profile_id": sender.profile_id})
    )
    assert [(o.from_, o.to, o.keyword, o.messaging_profile_id) for o in optouts] == [
        (sender.number, phone, "STOP", sender.profile_id)
    ]

    before = count_rows(server, messages, messages.c.from_number == second)
    with pytest.raises(telnyx.ConflictError) as caught:
        client.messages.send(from_=second, to=phone, text="Big sale!")
    assert caught.value.status_code == 409
    assert caught.value.response.headers["x-should-retry"] == "false"
    error = caught.value.body["errors"][0]  # type: ignore[index]
    assert (error["code"], error["title"]) == ("40300", "Blocked due to STOP message")
    assert count_rows(server, messages, messages.c.from_number == second) == before
    with pytest.raises(telnyx.ConflictError):
        client.messages.send(from_=sender.number, to=phone, text="Big sale!")
    # Another handset is not affected.
    assert client.messages.send(from_=second, to=handset(), text="hi").data is not None

    r = inject(server, account, phone, second, "START")
    assert r.json()["data"]["autoresponse_type"] == "START"
    start_reply = wait_until(
        lambda: (
            [
                p
                for p in outbound_events_to(receiver, sender.hook_path, phone, "message.finalized")
                if p["text"] == DEFAULT_TEXTS["start"]
            ]
            or None
        ),
        15,
    )[0]
    assert start_reply["from"]["phone_number"] == second
    assert (
        list(client.messaging_optouts.list(filter={"messaging_profile_id": sender.profile_id}))
        == []
    )
    msg = client.messages.send(from_=second, to=phone, text="Welcome back").data
    assert msg is not None and msg.to and msg.to[0].status == "queued"


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("  stop all!  ", "STOP ALL"),
        ("Unsubscribe.", "UNSUBSCRIBE"),
        ("quit", "QUIT"),
        ("OPTOUT?!", "OPTOUT"),
    ],
)
def test_opt_out_keyword_variants(
    server: RunningServer, account: Account, client: Telnyx, sender: Sender, text: str, keyword: str
) -> None:
    phone = handset()
    r = inject(server, account, phone, sender.number, text)
    assert r.json()["data"]["autoresponse_type"] == "STOP"
    [optout] = list(
        client.messaging_optouts.list(filter={"messaging_profile_id": sender.profile_id})
    )
    assert (optout.to, optout.keyword) == (phone, keyword)


@pytest.mark.parametrize(
    "text", ["please stop by tomorrow", "stop it", "help me out", "Starting soon"]
)
def test_messages_containing_keywords_are_ordinary(
    server: RunningServer,
    account: Account,
    client: Telnyx,
    sender: Sender,
    receiver: WebhookReceiver,
    text: str,
) -> None:
    phone = handset()
    r = inject(server, account, phone, sender.number, text)
    message_id = r.json()["data"]["id"]
    assert r.json()["data"]["autoresponse_type"] is None
    assert (
        inbound_event(receiver, sender.hook_path, message_id)["payload"]["autoresponse_type"]
        is None
    )
    assert (
        list(client.messaging_optouts.list(filter={"messaging_profile_id": sender.profile_id}))
        == []
    )
    assert (
        count_rows(
            server, messages, messages.c.to_number == phone, messages.c.direction == "outbound"
        )
        == 0
    )
    assert client.messages.send(from_=sender.number, to=phone, text="see you").data is not None


def test_help_answers_without_blocking(
    server: RunningServer,
    account: Account,
    client: Telnyx,
    sender: Sender,
    receiver: WebhookReceiver,
) -> None:
    phone = handset()
    r = inject(server, account, phone, sender.number, "help")
    assert r.json()["data"]["autoresponse_type"] == "HELP"
    reply = wait_auto_reply(receiver, sender, phone)[0]
    assert reply["text"] == DEFAULT_TEXTS["info"]
    assert (
        list(client.messaging_optouts.list(filter={"messaging_profile_id": sender.profile_id}))
        == []
    )
    assert client.messages.send(from_=sender.number, to=phone, text="ok").data is not None


def test_autoresp_config_overrides_the_reply_for_one_country(
    server: RunningServer,
    account: Account,
    client: Telnyx,
    sender: Sender,
    receiver: WebhookReceiver,
) -> None:
    client.messaging_profiles.autoresp_configs.create(
        sender.profile_id,
        op="stop",
        keywords=["STOP", "ARRET"],
        country_code="CA",
        resp_text="Vous êtes désabonné.",
    )
    canadian, american = handset("416"), handset("312")
    inject(server, account, canadian, sender.number, "arret")
    inject(server, account, american, sender.number, "STOP")
    assert wait_auto_reply(receiver, sender, canadian)[0]["text"] == "Vous êtes désabonné."
    assert wait_auto_reply(receiver, sender, american)[0]["text"] == DEFAULT_TEXTS["stop"]
    listed = {
        o.to: o.keyword
        for o in client.messaging_optouts.list(filter={"messaging_profile_id": sender.profile_id})
    }
    assert listed == {canadian: "ARRET", american: "STOP"}
    # The CA keyword means nothing to a US handset.
    r = inject(server, account, handset("312"), sender.number, "arret")
    assert r.json()["data"]["autoresponse_type"] is None


def test_keyword_to_a_number_without_profile_changes_nothing(
    server: RunningServer, account: Account, client: Telnyx
) -> None:
    number = unique_number()
    client.number_orders.create(phone_numbers=[{"phone_number": number}])
    r = inject(server, account, handset(), number, "STOP")
    assert r.status_code == 200
    assert r.json()["data"]["autoresponse_type"] is None
    assert list(client.messaging_optouts.list()) == []


# --- on-net -------------------------------------------------------------------------------------


def test_on_net_conversation_between_two_organizations(
    account: Account, other_account: Account, receiver: WebhookReceiver
) -> None:
    alice = make_sender(account.client, receiver, unique_number())
    bob = make_sender(other_account.client, receiver, unique_number())

    sent = account.client.messages.send(from_=alice.number, to=bob.number, text="Hi Bob").data
    assert sent is not None and sent.id
    got = wait_until(
        lambda: received_events(receiver.on(bob.hook_path), "message.received") or None, 15
    )
    inbound = got[0]["payload"]
    assert inbound["direction"] == "inbound"
    assert inbound["organization_id"] == other_account.org.id
    assert inbound["messaging_profile_id"] == bob.profile_id
    assert inbound["from"]["phone_number"] == alice.number
    assert inbound["to"][0]["phone_number"] == bob.number
    assert inbound["text"] == "Hi Bob"
    assert inbound["id"] != sent.id

    # Each side sees only its own record, in its own direction.
    outbound = wait_until(
        lambda: (
            [
                e
                for e in outbound_events_to(
                    receiver, alice.hook_path, bob.number, "message.finalized"
                )
            ]
            or None
        ),
        15,
    )[0]
    assert outbound["to"][0]["status"] == "delivered"
    assert received_events(receiver.on(alice.hook_path), "message.received") == []
    retrieved = other_account.client.messages.retrieve(inbound["id"]).data
    assert retrieved is not None and retrieved.direction == "inbound"
    with pytest.raises(telnyx.NotFoundError):
        account.client.messages.retrieve(inbound["id"])
    with pytest.raises(telnyx.NotFoundError):
        other_account.client.messages.retrieve(sent.id)

    # Bob answers; Alice receives it.
    other_account.client.messages.send(from_=bob.number, to=alice.number, text="Hi Alice")
    back = wait_until(
        lambda: received_events(receiver.on(alice.hook_path), "message.received") or None, 15
    )
    assert back[0]["payload"]["text"] == "Hi Alice"
    assert back[0]["payload"]["organization_id"] == account.org.id
    assert back[0]["payload"]["from"]["phone_number"] == bob.number


def test_on_net_stop_blocks_the_sender_number(
    account: Account, other_account: Account, receiver: WebhookReceiver
) -> None:
    alice = make_sender(account.client, receiver, unique_number())
    bob = make_sender(other_account.client, receiver, unique_number())
    account.client.messages.send(from_=alice.number, to=bob.number, text="STOP")
    # Bob's number confirms; the confirmation reaches Alice as an ordinary message.
    confirmation = wait_until(
        lambda: received_events(receiver.on(alice.hook_path), "message.received") or None, 15
    )
    assert confirmation[0]["payload"]["text"] == DEFAULT_TEXTS["stop"]
    assert confirmation[0]["payload"]["autoresponse_type"] is None
    [optout] = list(other_account.client.messaging_optouts.list())
    assert (optout.from_, optout.to) == (bob.number, alice.number)
    assert list(account.client.messaging_optouts.list()) == []
    with pytest.raises(telnyx.ConflictError):
        other_account.client.messages.send(from_=bob.number, to=alice.number, text="Still there?")


# --- simulated handsets -------------------------------------------------------------------------


def test_echo_handset_replies_with_the_same_text(
    client: Telnyx, sender: Sender, receiver: WebhookReceiver
) -> None:
    echo = "+13125550200"
    client.messages.send(from_=sender.number, to=echo, text="ping 42")
    event = wait_until(
        lambda: received_events(receiver.on(sender.hook_path), "message.received") or None, 15
    )[0]
    assert event["payload"]["from"]["phone_number"] == echo
    assert event["payload"]["to"][0]["phone_number"] == sender.number
    assert event["payload"]["text"] == "ping 42"


def test_stop_handset_opts_out_and_does_not_answer_the_confirmation(
    server: RunningServer, client: Telnyx, sender: Sender, receiver: WebhookReceiver
) -> None:
    stopper = "+13125550201"
    client.messages.send(from_=sender.number, to=stopper, text="Deals inside")
    event = wait_until(
        lambda: received_events(receiver.on(sender.hook_path), "message.received") or None, 15
    )[0]
    assert event["payload"]["text"] == "STOP"
    assert event["payload"]["autoresponse_type"] == "STOP"
    replies = wait_auto_reply(
        receiver, sender, stopper, count=2
    )  # the campaign, then the confirmation
    confirmation = next(r for r in replies if r["text"] == DEFAULT_TEXTS["stop"])
    assert confirmation["to"][0]["status"] == "delivered"

    # The handset decided when the confirmation was sent: it queued no answer, and none arrived.
    async def answers(ctx: AppContext) -> tuple[int, int]:
        async with ctx.db.transaction() as uow:
            pending = (
                select(func.count())
                .select_from(jobs)
                .where(
                    jobs.c.kind == "simulator.handset_reply",
                    jobs.c.payload["message_id"].as_string() == confirmation["id"],
                )
            )
            stored = (
                select(func.count())
                .select_from(messages)
                .where(
                    messages.c.direction == "inbound",
                    messages.c.from_number == stopper,
                    messages.c.messaging_profile_id == sender.profile_id,
                )
            )
            return (
                int((await uow.conn.execute(pending)).scalar_one()),
                int((await uow.conn.execute(stored)).scalar_one()),
            )

    assert server.run(answers) == (0, 1)
    with pytest.raises(telnyx.ConflictError):
        client.messages.send(from_=sender.number, to=stopper, text="More deals")


def test_help_handset_gets_the_help_text(
    client: Telnyx, sender: Sender, receiver: WebhookReceiver
) -> None:
    helper = "+13125550202"
    client.messages.send(from_=sender.number, to=helper, text="Hello")
    event = wait_until(
        lambda: received_events(receiver.on(sender.hook_path), "message.received") or None, 15
    )[0]
    assert event["payload"]["autoresponse_type"] == "HELP"
    replies = wait_auto_reply(receiver, sender, helper, count=2)
    assert DEFAULT_TEXTS["info"] in [r["text"] for r in replies]


# --- CLI ----------------------------------------------------------------------------------------


def test_inbound_cli(
    server: RunningServer, account: Account, client: Telnyx, sender: Sender
) -> None:
    from typer.testing import CliRunner

    from signalpost.cli import app

    phone = handset()
    result = CliRunner().invoke(
        app,
        [
            "inbound",
            "--from",
            phone,
            "--to",
            sender.number,
            "--text",
            "STOP",
            "--base-url",
            f"{server.base_url}/v2",
            "--api-key",
            account.api_key,
        ],
    )
    assert result.exit_code == 0, result.output
    message_id, kind = result.output.splitlines()[:2]
    assert kind == "autoresponse_type: STOP"
    msg = client.messages.retrieve(message_id).data
    assert msg is not None and msg.direction == "inbound"
    assert [o.to for o in client.messaging_optouts.list()] == [phone]
