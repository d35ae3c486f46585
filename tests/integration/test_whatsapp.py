"""WhatsApp through the official SDK: every content type accepted and echoed, bad content rejected
with a pointer to the bad field, the sender rules, the lifecycle with a read receipt, and inbound
WhatsApp messages (injected, and on-net)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import telnyx
from telnyx import Telnyx
from typer.testing import CliRunner

from signalpost import cli
from tests.conftest import Account, unique_number
from tests.support.messaging import Sender, event_types, events_for, make_sender
from tests.support.receiver import Received, WebhookReceiver
from tests.support.server import RunningServer
from tests.support.whatsapp_examples import LINK, VALID

HANDSET = "+13125550401"


def enable_whatsapp(server: RunningServer, account: Account, number: str) -> None:
    """`signalpost numbers whatsapp enable` against the test server's database."""
    result = CliRunner().invoke(
        cli.app,
        [
            "numbers",
            "whatsapp",
            "enable",
            number,
            "--org",
            account.org.id,
            "--database-url",
            server.settings.database_url,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "whatsapp enabled" in result.output


@pytest.fixture
def wa(
    client: Telnyx, receiver: WebhookReceiver, server: RunningServer, account: Account
) -> Sender:
    sender = make_sender(client, receiver, unique_number())
    enable_whatsapp(server, account, sender.number)
    return sender


def _error(exc: telnyx.APIStatusError) -> dict[str, Any]:
    body = exc.body
    assert isinstance(body, dict)
    return body["errors"][0]  # type: ignore[no-any-return]


def received_on(rs: list[Received], path: str) -> list[Received]:
    return [
        r for r in rs if r.path == path and r.json()["data"].get("event_type") == "message.received"
    ]


@pytest.mark.parametrize("name", list(VALID))
def test_every_content_type_is_sent(
    client: Telnyx, wa: Sender, account: Account, name: str
) -> None:
    content = VALID[name]
    kind = content.get("type", "text")
    resp = client.messages.whatsapp(
        from_=wa.number,
        to=HANDSET,
        whatsapp_message=content,
        type="WHATSAPP",  # type: ignore[arg-type]
    ).data
    assert resp is not None and resp.id
    assert (resp.type, resp.encoding, resp.direction, resp.record_type) == (
        "WHATSAPP",
        "utf-8",
        "outbound",
        "message",
    )
    assert resp.from_ is not None and resp.from_.phone_number == wa.number
    assert resp.from_.status == "received"
    assert resp.to is not None and [(t.phone_number, t.status) for t in resp.to] == [
        (HANDSET, "queued")
    ]
    assert resp.messaging_profile_id == wa.profile_id
    assert resp.organization_id == account.org.id
    assert resp.received_at is not None and resp.wait_seconds is not None
    assert resp.body is not None and resp.body.type == kind
    assert getattr(resp.body, kind) is not None

    stored = client.messages.retrieve(resp.id).data
    assert stored is not None and stored.type == "WHATSAPP" and stored.body is not None
    full = stored.body.model_extra or {}
    assert full["type"] == kind
    if kind == "contacts":
        assert resp.body.contacts and resp.body.contacts[0].name == "Ada Lovelace"
        assert full["contacts"][0]["name"]["formatted_name"] == "Ada Lovelace"
    if kind == "text":
        assert stored.body.text == VALID[name]["text"]["body"]
        assert resp.body.text is not None and resp.body.text.body == VALID[name]["text"]["body"]
    if name == "interactive_flow":
        assert full["interactive"]["type"] == "flow"


def test_lifecycle_ends_with_a_read_receipt(
    client: Telnyx, wa: Sender, receiver: WebhookReceiver
) -> None:
    resp = client.messages.whatsapp(
        from_=wa.number, to=HANDSET, whatsapp_message={"type": "text", "text": {"body": "Hi!"}}
    ).data
    assert resp is not None and resp.id
    got = receiver.wait_for(lambda rs: "message.read" in event_types(rs, resp.id or ""))
    hooks = [r for r in got if r.path == wa.hook_path]
    assert event_types(hooks, resp.id) == ["message.sent", "message.finalized", "message.read"]
    statuses = [e["data"]["payload"]["to"][0]["status"] for e in events_for(hooks, resp.id)]
    assert statuses == ["sent", "delivered", "read"]
    for r in hooks:
        event = client.webhooks.unwrap(r.body.decode(), headers=r.headers)
        assert event is not None
    read = events_for(hooks, resp.id)[-1]["data"]["payload"]
    assert read["type"] == "WHATSAPP" and read["encoding"] == "utf-8"
    # Outbound payloads type `body.text` as a string: the text object is given as its body.
    assert read["body"] == {"type": "text", "text": "Hi!"}
    assert read["text"] == "Hi!"
    assert read["cost"]["amount"] and isinstance(read["cost"]["amount"], str)
    msg = client.messages.retrieve(resp.id).data
    assert msg is not None and msg.to and msg.to[0].status == "read"
    assert msg.completed_at is not None


def test_a_failed_delivery_is_never_read(
    client: Telnyx, wa: Sender, receiver: WebhookReceiver
) -> None:
    failing = "+14155550110"  # the simulator: delivery_failed
    marker_to = "+14155550100"
    resp = client.messages.whatsapp(
        from_=wa.number, to=failing, whatsapp_message={"text": {"body": "lost"}}
    ).data
    marker = client.messages.whatsapp(
        from_=wa.number, to=marker_to, whatsapp_message={"text": {"body": "marker"}}
    ).data
    assert resp is not None and resp.id and marker is not None and marker.id
    got = receiver.wait_for(
        lambda rs: (
            "message.finalized" in event_types(rs, resp.id or "")
            and "message.read" in event_types(rs, marker.id or "")
        )
    )
    assert event_types(got, resp.id) == ["message.sent", "message.finalized"]


BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"type": "image", "image": {"caption": "no link"}}, "/whatsapp_message/image/link", "10004"),
    ({"type": "image", "image": {"link": "mailto:a@b.c"}}, "/whatsapp_message/image/link", "10015"),
    ({"type": "image", "image": {"link": 42}}, "/whatsapp_message/image/link", "10015"),
    ({"type": "fax"}, "/whatsapp_message/type", "10015"),
    ({"type": "video", "text": {"body": "x"}}, "/whatsapp_message/video", "10004"),
    (
        {"type": "location", "location": {"latitude": "95", "longitude": "0"}},
        "/whatsapp_message/location/latitude",
        "10015",
    ),
    (
        {
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": {"text": "x"},
                "action": {"buttons": [{"type": "reply", "reply": {"id": "1", "title": "x" * 25}}]},
            },
        },
        "/whatsapp_message/interactive/action/buttons/0/reply/title",
        "10015",
    ),
    (
        {"type": "contacts", "contacts": [{"name": {"first_name": "A"}}]},
        "/whatsapp_message/contacts/0/name/formatted_name",
        "10004",
    ),
    (
        {"type": "template", "template": {"name": "t"}},
        "/whatsapp_message/template/language",
        "10004",
    ),
]


@pytest.mark.parametrize(("content", "pointer", "code"), BAD, ids=[b[1] for b in BAD])
def test_bad_content_is_rejected_with_a_pointer(
    client: Telnyx, wa: Sender, content: dict[str, Any], pointer: str, code: str
) -> None:
    with pytest.raises(telnyx.UnprocessableEntityError) as info:
        client.messages.whatsapp(from_=wa.number, to=HANDSET, whatsapp_message=content)  # type: ignore[arg-type]
    err = _error(info.value)
    assert (err["source"]["pointer"], err["code"]) == (pointer, code)
    assert info.value.response.headers["x-should-retry"] == "false"


def test_missing_whatsapp_message(server: RunningServer, account: Account, wa: Sender) -> None:
    resp = httpx.post(
        f"{server.base_url}/v2/messages/whatsapp",
        headers={"Authorization": f"Bearer {account.api_key}"},
        json={"from": wa.number, "to": HANDSET},
    )
    assert resp.status_code == 422
    err = resp.json()["errors"][0]
    assert (err["code"], err["source"]["pointer"]) == ("10004", "/whatsapp_message")


def test_sender_rules(
    client: Telnyx,
    wa: Sender,
    receiver: WebhookReceiver,
    server: RunningServer,
    account: Account,
    other_account: Account,
) -> None:
    content = {"type": "text", "text": {"body": "x"}}
    not_enabled = make_sender(client, receiver, unique_number())
    theirs = make_sender(other_account.client, receiver, unique_number())
    enable_whatsapp(server, other_account, theirs.number)
    for src in (not_enabled.number, theirs.number, unique_number(), "12345"):
        with pytest.raises(telnyx.BadRequestError) as info:
            client.messages.whatsapp(from_=src, to=HANDSET, whatsapp_message=content)  # type: ignore[arg-type]
        err = _error(info.value)
        assert (err["code"], err["source"]["pointer"]) == ("40305", "/from")
    assert "not enabled for WhatsApp" in _error_for(client, not_enabled.number, content)
    with pytest.raises(telnyx.BadRequestError) as info:
        client.messages.whatsapp(from_=wa.number, to="call me", whatsapp_message=content)  # type: ignore[arg-type]
    assert (_error(info.value)["code"], _error(info.value)["source"]["pointer"]) == ("40310", "/to")
    bsuid = client.messages.whatsapp(
        from_=wa.number,
        to="US.13491208655302741918",
        whatsapp_message=content,  # type: ignore[arg-type]
    ).data
    assert bsuid is not None and bsuid.to and bsuid.to[0].phone_number == "US.13491208655302741918"


def _error_for(client: Telnyx, src: str, content: dict[str, Any]) -> str:
    with pytest.raises(telnyx.BadRequestError) as info:
        client.messages.whatsapp(from_=src, to=HANDSET, whatsapp_message=content)  # type: ignore[arg-type]
    return str(_error(info.value)["detail"])


def test_messaging_profile_id(
    client: Telnyx,
    wa: Sender,
    server: RunningServer,
    account: Account,
    other_account: Account,
    receiver: WebhookReceiver,
) -> None:
    content = {"type": "text", "text": {"body": "x"}}
    bare = unique_number()
    client.number_orders.create(phone_numbers=[{"phone_number": bare}])
    enable_whatsapp(server, account, bare)
    with pytest.raises(telnyx.UnprocessableEntityError) as info:
        client.messages.whatsapp(from_=bare, to=HANDSET, whatsapp_message=content)  # type: ignore[arg-type]
    assert _error(info.value)["source"]["pointer"] == "/messaging_profile_id"
    ok = client.messages.whatsapp(
        from_=bare,
        to=HANDSET,
        whatsapp_message=content,
        messaging_profile_id=wa.profile_id,  # type: ignore[arg-type]
    ).data
    assert ok is not None and ok.messaging_profile_id == wa.profile_id
    foreign = make_sender(other_account.client, receiver, unique_number())
    with pytest.raises(telnyx.BadRequestError) as info:
        client.messages.whatsapp(
            from_=bare,
            to=HANDSET,
            whatsapp_message=content,
            messaging_profile_id=foreign.profile_id,  # type: ignore[arg-type]
        )
    assert _error(info.value)["source"]["pointer"] == "/messaging_profile_id"


def test_idempotency_key(client: Telnyx, wa: Sender) -> None:
    key = uuid.uuid4().hex
    content = {"type": "text", "text": {"body": "once"}}
    first = client.messages.whatsapp(
        from_=wa.number,
        to=HANDSET,
        whatsapp_message=content,
        idempotency_key=key,  # type: ignore[arg-type]
    ).data
    again = client.messages.whatsapp(
        from_=wa.number,
        to=HANDSET,
        whatsapp_message=content,
        idempotency_key=key,  # type: ignore[arg-type]
    ).data
    assert first is not None and again is not None and first.id == again.id


def test_injected_inbound_whatsapp(
    server: RunningServer, client: Telnyx, wa: Sender, account: Account, receiver: WebhookReceiver
) -> None:
    def inject(content: dict[str, Any]) -> httpx.Response:
        return httpx.post(
            f"{server.base_url}/simulator/inbound",
            headers={"Authorization": f"Bearer {account.api_key}"},
            json={"from": HANDSET, "to": wa.number, "whatsapp_message": content},
        )

    resp = inject({"type": "text", "text": {"body": "Hello business"}})
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    assert (data["type"], data["direction"], data["to"]) == ("WHATSAPP", "inbound", wa.number)
    loc = inject(
        {"type": "location", "location": {"latitude": "41.88", "longitude": "-87.63", "name": "HQ"}}
    )
    assert loc.status_code == 200, loc.text
    img = inject({"type": "image", "image": {"link": LINK, "caption": "look"}})
    assert img.status_code == 200, img.text

    got = receiver.wait_for(lambda rs: len(received_on(rs, wa.hook_path)) >= 3)
    events = [
        client.webhooks.unwrap(r.body.decode(), headers=r.headers)
        for r in received_on(got, wa.hook_path)
    ]
    payloads = {e.data.payload.id: e.data.payload for e in events}  # type: ignore[union-attr]
    text = payloads[data["id"]]
    assert text.type == "WHATSAPP" and text.to == wa.number
    assert text.from_ is not None and text.from_.phone_number == HANDSET
    assert text.text == "Hello business" and text.encoding == "utf-8"
    assert text.body is not None and text.body.type == "text" and text.body.from_ == HANDSET
    assert not isinstance(text.body.text, str) and text.body.text is not None
    assert text.body.text.body == "Hello business"
    located = payloads[loc.json()["data"]["id"]]
    assert located.body is not None and located.body.location is not None
    assert located.body.location.latitude == 41.88
    image = payloads[img.json()["data"]["id"]]
    assert image.body is not None and (image.body.model_extra or {})["image"]["link"] == LINK
    assert image.text == "look"
    stored = client.messages.retrieve(data["id"]).data
    assert stored is not None and stored.direction == "inbound" and stored.to == wa.number

    bad = inject({"type": "image", "image": {}})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["source"]["pointer"] == "/whatsapp_message/image/link"


def test_on_net_whatsapp_arrives_as_whatsapp(
    client: Telnyx,
    wa: Sender,
    server: RunningServer,
    other_account: Account,
    receiver: WebhookReceiver,
) -> None:
    theirs = make_sender(other_account.client, receiver, unique_number())
    enable_whatsapp(server, other_account, theirs.number)
    resp = client.messages.whatsapp(
        from_=wa.number,
        to=theirs.number,
        whatsapp_message={"type": "text", "text": {"body": "hey"}},
    ).data
    assert resp is not None and resp.id
    got = receiver.wait_for(lambda rs: bool(received_on(rs, theirs.hook_path)))
    [r] = received_on(got, theirs.hook_path)
    event = other_account.client.webhooks.unwrap(r.body.decode(), headers=r.headers)
    payload = event.data.payload  # type: ignore[union-attr]
    assert payload.type == "WHATSAPP" and payload.to == theirs.number
    assert payload.from_ is not None and payload.from_.phone_number == wa.number
    assert payload.body is not None and payload.body.type == "text"
    assert not isinstance(payload.body.text, str) and payload.body.text is not None
    assert payload.body.text.body == "hey"
