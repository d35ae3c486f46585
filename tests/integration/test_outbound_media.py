"""MMS media under the outbound guard (`outbound_allow_private=false`), through the official SDK:
redirect hops (at most 3, each checked), a media name that turns blocked at send time, the size cap
on an endless body, a slow drip cut at `media_fetch_timeout`, and simulated inbound media.

No traffic leaves loopback: names resolve through a resolver stub; the allowed media server listens
on 127.0.0.2 (exempt through `outbound_allowed_networks`); one on 127.0.0.1 stands for the internal
network and must never be reached.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import telnyx
from telnyx import Telnyx

from signalpost.context import GUARD_KEY
from signalpost.kit.netguard import OutboundGuard
from signalpost.messages.media import MAX_REDIRECTS
from tests import conftest
from tests.conftest import Account, unique_number
from tests.support.media_server import PNG_HEAD, MediaServer
from tests.support.messaging import Sender, make_sender
from tests.support.messaging import wait_final as final
from tests.support.receiver import WebhookReceiver
from tests.support.resolver import StubResolver
from tests.support.server import RunningServer

EXEMPT = "127.0.0.2"
FETCH_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def resolver() -> StubResolver:
    return StubResolver()


@pytest.fixture(scope="module")
def server(database_url: str, resolver: StubResolver) -> Iterator[RunningServer]:
    settings = conftest.test_settings(
        database_url,
        outbound_allow_private=False,
        outbound_allowed_networks=[f"{EXEMPT}/32"],
        media_fetch_timeout=FETCH_TIMEOUT,
    )
    running = RunningServer(settings)
    running.ctx.extras[GUARD_KEY] = OutboundGuard.from_settings(settings, resolver=resolver)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver(host=EXEMPT).start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def media() -> Iterator[MediaServer]:
    m = MediaServer(host=EXEMPT).start()
    yield m
    m.stop()


@pytest.fixture(scope="module")
def internal() -> Iterator[MediaServer]:
    m = MediaServer().start()
    yield m
    m.stop()


def _name() -> str:
    return f"m{uuid.uuid4().hex[:10]}.test"


def _port(base_url: str) -> str:
    return base_url.rsplit(":", 1)[1]


def _send(client: Telnyx, sender: Sender, urls: list[str]) -> Any:
    resp = client.messages.send(
        from_=sender.number, to="+13125550101", text="pic", media_urls=urls
    ).data
    assert resp is not None and resp.id
    return final(client, resp.id)


def _failure(msg: Any) -> str:
    assert msg.to[0].status == "sending_failed"
    [error] = msg.errors
    assert error.code == "40317"
    return str(error.detail)


def test_redirects_are_followed_up_to_three_hops_each_checked(
    client: Telnyx,
    receiver: WebhookReceiver,
    media: MediaServer,
    internal: MediaServer,
    resolver: StubResolver,
) -> None:
    sender = make_sender(client, receiver, unique_number())
    name = _name()
    resolver.set(name, EXEMPT)
    file_url, served = media.add(2000, "image/png", head=PNG_HEAD)
    hops = file_url
    for _ in range(MAX_REDIRECTS):
        hops = media.add_redirect(hops)
    start = hops.replace(EXEMPT, name)  # the first hop by name
    msg = _send(client, sender, [start])
    assert msg.to[0].status == "delivered"
    assert [(m.size, m.sha256) for m in msg.media] == [(2000, served.sha256)]

    too_many = media.add_redirect(hops)  # four hops
    assert f"more than {MAX_REDIRECTS} redirects" in _failure(_send(client, sender, [too_many]))

    secret_url, _ = internal.add(100, "image/png", head=PNG_HEAD)
    inside = _name()
    resolver.set(inside, "127.0.0.1")
    for target in (secret_url, secret_url.replace("127.0.0.1", inside), "http://169.254.169.254/x"):
        detail = _failure(_send(client, sender, [media.add_redirect(target)]))
        assert "blocked by policy" in detail, detail
    assert sum(internal.hits.values()) == 0


def test_a_media_name_that_turns_blocked_fails_the_message(
    client: Telnyx,
    receiver: WebhookReceiver,
    internal: MediaServer,
    resolver: StubResolver,
) -> None:
    sender = make_sender(client, receiver, unique_number())
    secret_url, _ = internal.add(100, "image/png", head=PNG_HEAD)
    name = _name()  # does not resolve at the API: accepted
    url = secret_url.replace("127.0.0.1", name)
    resp = client.messages.send(
        from_=sender.number,
        to="+13125550101",
        text="pic",
        media_urls=[url],
    ).data
    assert resp is not None and resp.id
    resolver.set(name, "10.9.8.7", "127.0.0.1")
    detail = _failure(final(client, resp.id))
    assert detail.endswith(f"blocked by policy: {name} resolves to an address that is not public.")
    assert sum(internal.hits.values()) == 0


def test_an_endless_body_is_cut_at_the_size_cap(
    client: Telnyx, receiver: WebhookReceiver, media: MediaServer
) -> None:
    sender = make_sender(client, receiver, unique_number())
    url, _ = media.add(0, "image/png", endless=True)
    detail = _failure(_send(client, sender, [url]))
    assert "1048576 bytes an MMS may carry" in detail


def test_a_slow_drip_is_cut_at_the_fetch_timeout(
    client: Telnyx, receiver: WebhookReceiver, media: MediaServer
) -> None:
    sender = make_sender(client, receiver, unique_number())
    url, _ = media.add(400, "image/png", head=PNG_HEAD, drip=0.02)  # 8 s in all
    t0 = time.monotonic()
    detail = _failure(_send(client, sender, [url]))
    assert f"no complete answer within {FETCH_TIMEOUT:g} s" in detail
    assert time.monotonic() - t0 < 6


def test_simulated_inbound_media_under_the_guard(
    server: RunningServer, account: Account, receiver: WebhookReceiver, media: MediaServer
) -> None:
    number = unique_number()
    make_sender(account.client, receiver, number)

    def inbound(urls: list[str]) -> httpx.Response:
        return httpx.post(
            f"{server.base_url}/simulator/inbound",
            json={"from": "+13125550199", "to": number, "text": "hi", "media_urls": urls},
            headers={"Authorization": f"Bearer {account.api_key}"},
        )

    ok_url, _ = media.add(300, "image/png", head=PNG_HEAD)
    assert inbound([ok_url]).status_code == 200
    refused = inbound([ok_url, "http://169.254.169.254/latest/meta-data/"])
    assert refused.status_code == 400
    [error] = refused.json()["errors"]
    assert (error["code"], error["source"]) == ("40317", {"pointer": "/media_urls/1"})
    assert "blocked by policy" in error["detail"]


def test_media_urls_refused_at_the_api(client: Telnyx, receiver: WebhookReceiver) -> None:
    sender = make_sender(client, receiver, unique_number())
    with pytest.raises(telnyx.BadRequestError) as caught:
        client.messages.send(
            from_=sender.number,
            to="+13125550101",
            media_urls=["http://[fe80::1]/a.png"],
        )
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["errors"][0]["source"] == {"pointer": "/media_urls/0"}
