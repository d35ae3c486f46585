"""Outbound SMS through the official SDK: each send endpoint, validation, lifecycle, webhooks."""

from __future__ import annotations

import uuid

import httpx
import pytest
import telnyx
from telnyx import Telnyx

from tests.conftest import Account, unique_number
from tests.support.messaging import Sender, event_types, events_for, make_sender
from tests.support.messaging import wait_final as final_message
from tests.support.receiver import WebhookReceiver
from tests.support.server import RunningServer


def test_send_returns_the_queued_message(client: Telnyx, sender: Sender, account: Account) -> None:
    resp = client.messages.send(from_=sender.number, to="+13125550001", text="Hello, World!")
    msg = resp.data
    assert msg is not None
    assert msg.record_type == "message"
    assert msg.direction == "outbound"
    assert msg.type == "SMS"
    assert msg.to and msg.to[0].status == "queued"
    assert msg.to[0].phone_number == "+13125550001"
    assert msg.from_ and msg.from_.phone_number == sender.number
    assert msg.organization_id == account.org.id
    assert msg.messaging_profile_id == sender.profile_id
    assert msg.encoding == "GSM-7"
    assert msg.parts == 1
    assert msg.num_chars == 13
    assert msg.cost and msg.cost.amount and float(msg.cost.amount) > 0
    assert msg.valid_until is not None
    assert msg.errors == []


def test_message_goes_through_the_lifecycle_with_signed_webhooks(
    client: Telnyx, sender: Sender, receiver: WebhookReceiver
) -> None:
    msg = client.messages.send(from_=sender.number, to="+13125550002", text="lifecycle").data
    assert msg is not None and msg.id
    final = final_message(client, msg.id)
    assert final.to[0].status == "delivered"
    assert final.sent_at is not None and final.completed_at is not None
    got = receiver.wait_for(lambda rs: len(events_for(rs, msg.id)) >= 2)
    hooks = [r for r in got if r.path == sender.hook_path]
    assert event_types(hooks, msg.id) == ["message.sent", "message.finalized"]
    for r in hooks:
        event = client.webhooks.unwrap(r.body.decode(), headers=r.headers)
        assert event.data is not None
    finalized = events_for(hooks, msg.id)[1]
    assert finalized["data"]["payload"]["to"][0]["status"] == "delivered"
    assert finalized["meta"]["attempt"] == 1
    assert finalized["meta"]["delivered_to"] == receiver.url(sender.hook_path)


def test_long_code_endpoint(client: Telnyx, sender: Sender) -> None:
    msg = client.messages.send_long_code(from_=sender.number, to="+13125550003", text="hi").data
    assert msg is not None and msg.to and msg.to[0].status == "queued"
    assert final_message(client, msg.id or "").to[0].status == "delivered"


def test_message_webhook_url_is_tried_first(
    client: Telnyx, sender: Sender, receiver: WebhookReceiver
) -> None:
    path = f"/msg-{uuid.uuid4().hex[:8]}"
    msg = client.messages.send(
        from_=sender.number, to="+13125550004", text="hi", webhook_url=receiver.url(path)
    ).data
    assert msg is not None and msg.id and msg.webhook_url == receiver.url(path)
    receiver.wait_for(lambda rs: len(events_for([r for r in rs if r.path == path], msg.id)) >= 2)
    assert events_for(receiver.on(sender.hook_path), msg.id) == []


def test_use_profile_webhooks_false_sends_none(
    client: Telnyx, sender: Sender, receiver: WebhookReceiver
) -> None:
    msg = client.messages.send(
        from_=sender.number, to="+13125550005", text="quiet", use_profile_webhooks=False
    ).data
    assert msg is not None and msg.id
    final_message(client, msg.id)
    # The finalized state is stored before its webhook would be queued; give delivery a chance.
    marker = client.messages.send(from_=sender.number, to="+13125550006", text="marker").data
    assert marker is not None and marker.id
    receiver.wait_for(lambda rs: "message.finalized" in event_types(rs, marker.id))
    assert events_for(receiver.received, msg.id) == []


SIMULATOR_TABLE = [
    ("00", "delivered", None),
    ("09", "delivered", None),
    ("10", "delivery_failed", "40008"),
    ("11", "delivery_unconfirmed", None),
    ("12", "sending_failed", "40001"),
    ("13", "delivery_failed", "40002"),
    ("14", "expired", "40005"),
    ("16", "delivered", None),
]


@pytest.mark.parametrize(("xx", "status", "code"), SIMULATOR_TABLE)
def test_simulator_outcomes(
    client: Telnyx,
    sender: Sender,
    receiver: WebhookReceiver,
    xx: str,
    status: str,
    code: str | None,
) -> None:
    to = f"+141555501{xx}"
    msg = client.messages.send(from_=sender.number, to=to, text=f"outcome {xx}").data
    assert msg is not None and msg.id
    final = final_message(client, msg.id)
    assert final.to[0].status == status
    codes = [e.code for e in final.errors or []]
    assert codes == ([code] if code else [])
    got = receiver.wait_for(lambda rs: "message.finalized" in event_types(rs, msg.id))
    types = event_types(got, msg.id)
    if status == "sending_failed":
        assert types == ["message.finalized"]
    else:
        assert types == ["message.sent", "message.finalized"]
    finalized = events_for(got, msg.id)[-1]["data"]["payload"]
    assert finalized["to"][0]["status"] == status
    assert [e["code"] for e in finalized["errors"]] == ([code] if code else [])


def test_throttled_message_is_retried(client: Telnyx, sender: Sender) -> None:
    msg = client.messages.send(from_=sender.number, to="+12125550116", text="throttle").data
    assert msg is not None and msg.id
    assert final_message(client, msg.id).to[0].status == "delivered"


def test_retrieve_unknown_and_foreign_messages_404(
    client: Telnyx, sender: Sender, other_account: Account
) -> None:
    msg = client.messages.send(from_=sender.number, to="+13125550007", text="mine").data
    assert msg is not None and msg.id
    with pytest.raises(telnyx.NotFoundError):
        other_account.client.messages.retrieve(msg.id)
    with pytest.raises(telnyx.NotFoundError):
        client.messages.retrieve(str(uuid.uuid4()))


# --- validation --------------------------------------------------------------------------------


def _error(exc: telnyx.APIStatusError) -> dict:  # type: ignore[type-arg]
    body = exc.body
    assert isinstance(body, dict)
    return body["errors"][0]  # type: ignore[no-any-return]


def test_invalid_to(client: Telnyx, sender: Sender) -> None:
    with pytest.raises(telnyx.BadRequestError) as info:
        client.messages.send(from_=sender.number, to="12345abc", text="x")
    err = _error(info.value)
    assert err["code"] == "40310"
    assert err["source"]["pointer"] == "/to"
    assert info.value.response.headers["x-should-retry"] == "false"


def test_from_not_owned(
    client: Telnyx, sender: Sender, other_account: Account, receiver: WebhookReceiver
) -> None:
    theirs = make_sender(other_account.client, receiver, unique_number())
    for src in (theirs.number, unique_number()):
        with pytest.raises(telnyx.BadRequestError) as info:
            client.messages.send(from_=src, to="+13125550008", text="x")
        assert _error(info.value)["code"] == "40305"


def test_from_not_on_a_profile(client: Telnyx) -> None:
    number = unique_number()
    client.number_orders.create(phone_numbers=[{"phone_number": number}])
    with pytest.raises(telnyx.BadRequestError) as info:
        client.messages.send(from_=number, to="+13125550008", text="x")
    assert _error(info.value)["code"] == "40305"


def test_profile_disabled(client: Telnyx, sender: Sender) -> None:
    client.messaging_profiles.update(sender.profile_id, enabled=False)
    with pytest.raises(telnyx.BadRequestError) as info:
        client.messages.send(from_=sender.number, to="+13125550009", text="x")
    assert _error(info.value)["code"] == "40312"


def test_destination_not_whitelisted(client: Telnyx, sender: Sender) -> None:
    with pytest.raises(telnyx.BadRequestError) as info:
        client.messages.send(from_=sender.number, to="+33612345678", text="bonjour")
    err = _error(info.value)
    assert err["code"] == "40309"
    assert err["source"]["pointer"] == "/to"


def test_no_content(client: Telnyx, sender: Sender) -> None:
    with pytest.raises(telnyx.BadRequestError) as info:
        client.messages.send(from_=sender.number, to="+13125550010")
    assert _error(info.value)["code"] == "40316"


def test_too_many_parts(client: Telnyx, sender: Sender) -> None:
    with pytest.raises(telnyx.BadRequestError) as info:
        client.messages.send(from_=sender.number, to="+13125550011", text="x" * (153 * 10 + 1))
    assert _error(info.value)["code"] == "40302"
    ok = client.messages.send(from_=sender.number, to="+13125550011", text="x" * (153 * 10)).data
    assert ok is not None and ok.parts == 10


def test_gsm7_forced_with_unicode_text(client: Telnyx, sender: Sender) -> None:
    with pytest.raises(telnyx.BadRequestError) as info:
        client.messages.send(from_=sender.number, to="+13125550012", text="snow ☃", encoding="gsm7")
    assert _error(info.value)["source"]["pointer"] == "/text"


def test_auto_detect_long_message(client: Telnyx, sender: Sender) -> None:
    with pytest.raises(telnyx.BadRequestError) as info:
        client.messages.send(
            from_=sender.number, to="+13125550013", text="y" * (153 * 7), auto_detect=True
        )
    assert _error(info.value)["code"] == "40328"


def test_wrong_kind_of_sender_for_endpoint(client: Telnyx, sender: Sender) -> None:
    with pytest.raises(telnyx.BadRequestError) as info:
        client.messages.send_short_code(from_=sender.number, to="+13125550014", text="x")
    assert _error(info.value)["code"] == "40305"
    with pytest.raises(telnyx.BadRequestError) as info:
        client.messages.send_with_alphanumeric_sender(
            from_="Unknown", messaging_profile_id=sender.profile_id, to="+13125550014", text="x"
        )
    assert _error(info.value)["code"] in ("40305", "40306")


def test_encoding_and_parts(client: Telnyx, sender: Sender) -> None:
    gsm = client.messages.send(from_=sender.number, to="+13125550015", text="a" * 161).data
    assert gsm is not None and (gsm.encoding, gsm.parts, gsm.num_chars) == ("GSM-7", 2, 161)
    ucs = client.messages.send(from_=sender.number, to="+13125550015", text="é☃" * 36).data
    assert ucs is not None and (ucs.encoding, ucs.parts) == ("UCS-2", 2)


def test_smart_encoding_keeps_gsm7(client: Telnyx, receiver: WebhookReceiver) -> None:
    smart = make_sender(client, receiver, unique_number(), smart_encoding=True)
    text = "It’s “smart” — really…"
    msg = client.messages.send(from_=smart.number, to="+13125550016", text=text).data
    assert msg is not None and msg.id
    assert msg.encoding == "GSM-7" and msg.smart_encoding_applied is True
    got = receiver.wait_for(lambda rs: "message.sent" in event_types(rs, msg.id))
    assert events_for(got, msg.id)[0]["data"]["payload"]["text"] == text
    plain = client.messages.send(
        from_=smart.number, to="+13125550016", text=text, encoding="ucs2"
    ).data
    assert plain is not None and plain.encoding == "UCS-2" and plain.smart_encoding_applied is False


def test_malformed_bodies_never_500(
    server: RunningServer, account: Account, sender: Sender
) -> None:
    headers = {"Authorization": f"Bearer {account.api_key}", "content-type": "application/json"}
    cases = [
        (b"{not json", 400, "10023"),
        (b"[]", 400, "10015"),
        (b'{"from": "%s"}' % sender.number.encode(), 422, "10004"),
        (b'{"to": 5, "from": "%s", "text": "x"}' % sender.number.encode(), 422, "10015"),
        (
            b'{"to": "+13125550017", "from": "%s", "text": "x", "encoding": "latin1"}'
            % sender.number.encode(),
            422,
            "10015",
        ),
        (
            b'{"to": "+13125550017", "from": "%s", "media_urls": "nope"}' % sender.number.encode(),
            422,
            "10015",
        ),
    ]
    for body, status, code in cases:
        r = httpx.post(f"{server.base_url}/v2/messages", content=body, headers=headers)
        assert r.status_code == status, (body, r.text)
        assert r.json()["errors"][0]["code"] == code, (body, r.text)


def test_missing_key_is_401(server: RunningServer) -> None:
    r = httpx.post(f"{server.base_url}/v2/messages", json={"to": "+13125550018"})
    assert r.status_code == 401
    assert r.json()["errors"][0]["code"] == "10009"
    bad = Telnyx(api_key="KEYnope", base_url=f"{server.base_url}/v2", max_retries=0)
    with pytest.raises(telnyx.AuthenticationError):
        bad.messages.retrieve(str(uuid.uuid4()))


def test_cli_send_prints_the_id_and_follows_the_status(
    server: RunningServer, account: Account, sender: Sender
) -> None:
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "TELNYX_BASE_URL": f"{server.base_url}/v2",
        "TELNYX_API_KEY": account.api_key,
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "signalpost.cli",
            "send",
            "--from",
            sender.number,
            "--to",
            "+14155550110",
            "--text",
            "cli",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr  # the message ended failed
    assert "the message ended delivery_failed" in done.stderr
    lines = done.stdout.splitlines()
    message_id = lines[0]
    assert str(uuid.UUID(message_id)) == message_id
    assert lines[-1].startswith("status: delivery_failed") and "40008" in lines[-1]
    assert account.client.messages.retrieve(message_id).data.to[0].status == "delivery_failed"  # type: ignore[union-attr,index]


def test_short_code_endpoint(
    server: RunningServer, account: Account, client: Telnyx, sender: Sender
) -> None:
    from signalpost.context import AppContext
    from signalpost.numbers import service as numbers

    code = str(50000 + uuid.uuid4().int % 49999)

    async def provision(ctx: AppContext) -> None:
        async with ctx.db.transaction() as uow:
            await numbers.add_short_code(uow, account.org.id, code, profile_id=sender.profile_id)

    server.run(provision)
    msg = client.messages.send_short_code(
        from_=code, to="+13125550020", text="from a short code"
    ).data
    assert msg is not None and msg.from_ and msg.from_.phone_number == code
    assert final_message(client, msg.id or "").to[0].status == "delivered"
    with pytest.raises(telnyx.BadRequestError) as info:
        client.messages.send_long_code(from_=code, to="+13125550020", text="wrong endpoint")
    assert _error(info.value)["code"] == "40305"


def test_alphanumeric_sender_endpoint(client: Telnyx, sender: Sender) -> None:
    client.alphanumeric_sender_ids.create(
        alphanumeric_sender_id="Acme Inc", messaging_profile_id=sender.profile_id
    )
    msg = client.messages.send_with_alphanumeric_sender(
        from_="Acme Inc", messaging_profile_id=sender.profile_id, to="+447700900123", text="hello"
    ).data
    assert msg is not None and msg.from_ and msg.from_.phone_number == "Acme Inc"
    assert msg.type == "SMS"
    assert final_message(client, msg.id or "").to[0].status == "delivered"
