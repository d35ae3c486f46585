"""The outbound URL guard on a real server (`outbound_allow_private=false`), through the official SDK:
blocked webhook and media URLs refused at the API, a name that turns blocked failing its attempts in
`/webhook_deliveries`, no port oracle, and short links.

No traffic leaves loopback: names resolve through a resolver stub; the allowed receivers listen on
127.0.0.2 (exempt through `outbound_allowed_networks`), and 127.0.0.1 stands for the internal
network: a listener there must never be reached.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import telnyx
from telnyx import Telnyx

from signalpost.context import GUARD_KEY, AppContext, outbound_guard
from signalpost.kit.netguard import OutboundGuard
from signalpost.links import detect
from signalpost.links import service as links
from signalpost.profiles import service as profiles
from tests import conftest
from tests.conftest import Account, unique_number
from tests.support.messaging import make_sender
from tests.support.messaging import wait_final as final
from tests.support.receiver import WebhookReceiver
from tests.support.resolver import StubResolver
from tests.support.server import RunningServer, free_port
from tests.support.wait import wait_until

EXEMPT = "127.0.0.2"


@pytest.fixture(scope="module")
def resolver() -> StubResolver:
    return StubResolver()


@pytest.fixture(scope="module")
def server(database_url: str, resolver: StubResolver) -> Iterator[RunningServer]:
    settings = conftest.test_settings(
        database_url,
        outbound_allow_private=False,
        outbound_allowed_networks=[f"{EXEMPT}/32"],
        webhook_attempts=2,
    )
    running = RunningServer(settings)
    running.ctx.extras[GUARD_KEY] = OutboundGuard.from_settings(settings, resolver=resolver)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    """The customer's receiver, on an allowed address."""
    r = WebhookReceiver(host=EXEMPT).start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def internal() -> Iterator[WebhookReceiver]:
    """A service inside the network (on 127.0.0.1, refused by the guard): never to be reached."""
    r = WebhookReceiver().start()
    yield r
    r.stop()


def _error(exc: telnyx.APIStatusError) -> dict[str, Any]:
    body = exc.body
    assert isinstance(body, dict)
    return body["errors"][0]  # type: ignore[no-any-return]


def _name() -> str:
    return f"h{uuid.uuid4().hex[:10]}.test"


def _profile(client: Telnyx, **fields: Any) -> Any:
    return client.messaging_profiles.create(
        name=f"p-{uuid.uuid4().hex[:6]}", whitelisted_destinations=["US"], **fields
    ).data


# --- refused at the API --------------------------------------------------------------------------


def test_profiles_refuse_blocked_webhook_urls(
    client: Telnyx, resolver: StubResolver, internal: WebhookReceiver, receiver: WebhookReceiver
) -> None:
    loop_name = _name()
    resolver.set(loop_name, "127.0.0.1")
    mixed_name = _name()
    resolver.set(mixed_name, EXEMPT, "10.0.0.1")
    refused = [
        ("webhook_url", internal.url("/x")),  # http://127.0.0.1:<port>/x
        ("webhook_url", "http://169.254.169.254/latest/meta-data/"),
        ("webhook_failover_url", f"http://{loop_name}:8080/hook"),
        ("webhook_url", f"https://{mixed_name}/hook"),
        ("webhook_url", "http://[::ffff:10.0.0.1]/hook"),
        ("webhook_failover_url", "http://100.64.0.7/hook"),
        ("webhook_url", "http://[fd00::1]/hook"),
    ]
    for field, url in refused:
        with pytest.raises(telnyx.BadRequestError) as caught:
            _profile(client, **{field: url})
        err = _error(caught.value)
        assert err["code"] == "10003", url
        assert err["source"] == {"pointer": f"/{field}"}
        assert "is not allowed" in err["detail"]
    # A name is not told apart from what it resolves to.
    with pytest.raises(telnyx.BadRequestError) as caught:
        _profile(client, webhook_url=f"http://{loop_name}/")
    assert "127.0.0.1" not in _error(caught.value)["detail"]

    allowed = _profile(client, webhook_url=receiver.url("/ok"))
    assert allowed is not None and allowed.webhook_url == receiver.url("/ok")
    # A name that does not resolve yet passes (checked again at every attempt).
    later = _profile(client, webhook_url=f"http://{_name()}/hook")
    assert later is not None

    with pytest.raises(telnyx.BadRequestError) as caught:
        client.messaging_profiles.update(allowed.id, webhook_failover_url="http://127.0.0.1:1/")
    assert _error(caught.value)["source"] == {"pointer": "/webhook_failover_url"}
    assert client.messaging_profiles.retrieve(allowed.id).data.webhook_failover_url == ""


def test_sends_refuse_blocked_webhook_and_media_urls(
    client: Telnyx, receiver: WebhookReceiver, internal: WebhookReceiver
) -> None:
    sender = make_sender(client, receiver, unique_number())
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"webhook_url": internal.url("/m")}, "/webhook_url", "10003"),
        ({"webhook_failover_url": "http://169.254.169.254/"}, "/webhook_failover_url", "10003"),
        (
            {"media_urls": [receiver.url("/ok.png"), "http://10.1.2.3/a.png"]},
            "/media_urls/1",
            "40317",
        ),
    ]
    for fields, pointer, code in cases:
        with pytest.raises(telnyx.BadRequestError) as caught:
            client.messages.send(from_=sender.number, to="+13125550101", text="hi", **fields)
        err = _error(caught.value)
        assert (err["code"], err["source"]) == (code, {"pointer": pointer})
        with pytest.raises(telnyx.BadRequestError) as caught:
            client.messages.send_long_code(
                from_=sender.number, to="+13125550101", text="hi", **fields
            )
        assert _error(caught.value)["source"] == {"pointer": pointer}
    with pytest.raises(telnyx.BadRequestError) as caught:
        client.messages.send_group_mms(
            from_=sender.number,
            to=["+13125550101", "+13125550102"],
            media_urls=["http://127.0.0.1/a.png"],
        )
    assert _error(caught.value)["source"] == {"pointer": "/media_urls/0"}


# --- at the time of the attempt ------------------------------------------------------------------


def _failed_deliveries(client: Telnyx, message_id: str, count: int = 2) -> list[Any]:
    """The message's failed webhook deliveries, once there are `count` (sent and finalized)."""

    def check() -> list[Any] | None:
        found = list(
            client.webhook_deliveries.list(
                filter={"status": {"eq": "failed"}, "webhook": {"contains": message_id}}
            )
        )
        return found if len(found) >= count else None

    return wait_until(check, timeout=20)


def _errors(delivery: Any) -> list[str]:
    return [a.to_dict()["error"] for a in delivery.attempts or []]


def test_a_name_that_turns_blocked_fails_its_attempts_with_the_reason(
    client: Telnyx,
    resolver: StubResolver,
    receiver: WebhookReceiver,
    internal: WebhookReceiver,
) -> None:
    name = _name()  # does not resolve yet: accepted at the API
    path = f"/hooks/{uuid.uuid4().hex[:8]}"
    url = f"http://{name}:{internal.base_url.rsplit(':', 1)[1]}{path}"
    sender = make_sender(client, receiver, unique_number())
    client.messaging_profiles.update(sender.profile_id, webhook_url=url)
    resolver.set(name, "127.0.0.1")  # now it points into the network

    sent = client.messages.send(from_=sender.number, to="+13125550101", text="hi").data
    assert sent is not None and sent.id
    assert final(client, sent.id).to[0].status == "delivered"
    deliveries = _failed_deliveries(client, sent.id)
    for d in deliveries:
        assert [a.http.request.url for a in d.attempts or []] == [url, url]
        assert (
            _errors(d)
            == [f"blocked by policy: {name} resolves to an address that is not public"] * 2
        )
    assert internal.on(path) == []


def test_no_oracle_a_closed_port_and_a_missing_name_fail_alike(
    client: Telnyx, resolver: StubResolver, receiver: WebhookReceiver
) -> None:
    closed = _name()
    resolver.set(closed, EXEMPT)
    sender = make_sender(client, receiver, unique_number())
    ids = []
    for url in (f"http://{closed}:{free_port()}/h", f"http://{_name()}/h"):
        sent = client.messages.send(
            from_=sender.number,
            to="+13125550101",
            text="hi",
            webhook_url=url,
            use_profile_webhooks=False,
        ).data
        assert sent is not None and sent.id
        ids.append(sent.id)
    errors = [e for i in ids for d in _failed_deliveries(client, i) for e in _errors(d)]
    assert errors and set(errors) == {"connection failed: could not connect"}


def test_allowed_receivers_still_get_their_webhooks(
    client: Telnyx, receiver: WebhookReceiver
) -> None:
    sender = make_sender(client, receiver, unique_number())
    sent = client.messages.send(from_=sender.number, to="+13125550101", text="hi").data
    assert sent is not None and sent.id
    receiver.wait_for(lambda rs: len([r for r in rs if r.path == sender.hook_path]) >= 2)


# --- short links ---------------------------------------------------------------------------------


def _shortening_sender(client: Telnyx, server: RunningServer, receiver: WebhookReceiver) -> Any:
    domain = server.base_url.split("://", 1)[1]
    return make_sender(
        client,
        receiver,
        unique_number(),
        url_shortener_settings={"domain": domain, "prefix": "", "send_webhooks": False},
    )


def test_blocked_links_are_not_shortened(
    client: Telnyx, server: RunningServer, resolver: StubResolver, receiver: WebhookReceiver
) -> None:
    sender = _shortening_sender(client, server, receiver)
    inside = _name()
    resolver.set(inside, "10.0.0.1")
    for text in (
        "see http://169.254.169.254/latest/meta-data/ now",
        f"see https://{inside}/admin",
        "http://127.0.0.1:8080/ and http://[::1]/",
    ):
        with pytest.raises(telnyx.BadRequestError) as caught:
            client.messages.send(from_=sender.number, to="+13125550101", text=text)
        err = _error(caught.value)
        assert err["source"] == {"pointer": "/text"}
        assert "cannot be shortened" in err["detail"]

    ok = client.messages.send(
        from_=sender.number, to="+13125550101", text=f"see {receiver.url('/page')}"
    ).data
    assert ok is not None and ok.text is not None
    assert receiver.url("/page") not in ok.text  # shortened


def test_a_short_link_whose_url_turned_blocked_is_not_followed(
    client: Telnyx, server: RunningServer, resolver: StubResolver, receiver: WebhookReceiver
) -> None:
    sender = _shortening_sender(client, server, receiver)
    turning, staying = _name(), _name()
    resolver.set(staying, EXEMPT)
    sent = client.messages.send(
        from_=sender.number,
        to="+13125550101",
        text=f"a http://{turning}/x b http://{staying}/y",
    ).data
    assert sent is not None and sent.text is not None
    short = [u.url for u in detect.find_links(sent.text) if u.url.startswith(server.base_url)]
    assert len(short) == 2
    resolver.set(turning, "169.254.169.254")

    with httpx.Client(follow_redirects=False) as web:
        blocked = web.get(short[0])
        assert blocked.status_code == 403
        assert "location" not in blocked.headers
        fine = web.get(short[1])
        assert fine.status_code == 302
        assert fine.headers["location"] == f"http://{staying}/y"


def test_whatsapp_and_scheduled_sends_refuse_blocked_webhook_urls(
    client: Telnyx, receiver: WebhookReceiver
) -> None:
    sender = make_sender(client, receiver, unique_number())
    with pytest.raises(telnyx.BadRequestError) as caught:
        client.messages.whatsapp(
            from_=sender.number,
            to="+13125550101",
            whatsapp_message={"type": "text", "text": {"body": "hi"}},
            webhook_url="http://169.254.169.254/",
        )
    assert _error(caught.value)["source"] == {"pointer": "/webhook_url"}
    with pytest.raises(telnyx.BadRequestError) as caught:
        client.messages.schedule(
            from_=sender.number,
            to="+13125550101",
            text="later",
            send_at="2099-01-01T00:00:00Z",
            webhook_failover_url="http://[::1]:8080/",
        )
    assert _error(caught.value)["source"] == {"pointer": "/webhook_failover_url"}


def test_without_lookups_a_literal_blocked_link_is_left_as_it_is(
    server: RunningServer, account: Account, receiver: WebhookReceiver
) -> None:
    """Shortening outside an API call (auto-replies) has no verdicts to refuse on: a link to a
    literal blocked address stays unshortened, the others are shortened."""
    sender = _shortening_sender(account.client, server, receiver)
    text = f"a http://169.254.169.254/x b http://{EXEMPT}:1/y"

    async def go(ctx: AppContext) -> str:
        async with ctx.db.transaction() as uow:
            profile = await profiles.require_profile(uow, account.org.id, sender.profile_id)
            return await links.shorten(
                uow,
                ctx.settings,
                account.org.id,
                str(uuid.uuid4()),
                profile,
                "+13125550101",
                text,
                guard=outbound_guard(ctx),
            )

    out = server.run(go)
    assert "http://169.254.169.254/x" in out
    assert f"http://{EXEMPT}:1/y" not in out and f"{server.base_url}/l/" in out


@pytest.fixture(scope="module")
def dripping() -> Iterator[str]:
    """A receiver (on an allowed address) that answers 200 and then drips its body a byte every
    50 ms, for a minute: each read is quick, the answer never complete."""
    listener = socket.create_server((EXEMPT, 0))
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1200\r\n\r\n")
                for _ in range(1200):
                    if stop.is_set():
                        return
                    conn.sendall(b"x")
                    time.sleep(0.05)
            except OSError:
                return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://{EXEMPT}:{listener.getsockname()[1]}/drip"
    stop.set()
    listener.close()


def test_a_slow_drip_receiver_is_cut_at_the_webhook_timeout(
    client: Telnyx, server: RunningServer, receiver: WebhookReceiver, dripping: str
) -> None:
    sender = make_sender(client, receiver, unique_number())
    sent = client.messages.send(
        from_=sender.number,
        to="+13125550101",
        text="hi",
        webhook_url=dripping,
        use_profile_webhooks=False,
    ).data
    assert sent is not None and sent.id
    timeout = server.settings.webhook_timeout
    for d in _failed_deliveries(client, sent.id):
        assert _errors(d) == [f"timeout: no response within {timeout:g} s"] * 2
        for attempt in d.attempts or []:
            # Cut at the timeout, not after the minute the body drips for (the bound leaves room
            # for a loaded machine: 2.7 s was seen with three suites running at once).
            latency = attempt.to_dict()["latency_ms"]
            assert timeout * 1000 * 0.9 <= latency < timeout * 1000 + 5000
