"""MMS through the official SDK: media fetched from a local media server at send time (sizes,
content types, unreachable and too-large media → 40317), checks at the API, the SMS fallback, and
media hashes on inbound MMS."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import telnyx
from telnyx import Telnyx

from signalpost.messages.media import MAX_TOTAL_BYTES
from tests.conftest import Account, unique_number
from tests.support.media_server import (
    GIF_HEAD,
    JPEG_HEAD,
    MP4_HEAD,
    PNG_HEAD,
    MediaServer,
    unreachable_url,
)
from tests.support.messaging import Sender, event_types, events_for, make_sender
from tests.support.messaging import wait_final as final
from tests.support.receiver import WebhookReceiver
from tests.support.server import RunningServer


@pytest.fixture(scope="module")
def media() -> Iterator[MediaServer]:
    server = MediaServer().start()
    yield server
    server.stop()


def _error(exc: telnyx.APIStatusError) -> dict[str, Any]:
    body = exc.body
    assert isinstance(body, dict)
    return body["errors"][0]  # type: ignore[no-any-return]


def test_media_is_fetched_and_described(
    client: Telnyx, sender: Sender, media: MediaServer, receiver: WebhookReceiver
) -> None:
    png_url, png = media.add(50_000, "image/png", head=PNG_HEAD)
    jpg_url, jpg = media.add(120_000, "application/octet-stream", head=JPEG_HEAD)
    resp = client.messages.send(
        from_=sender.number,
        to="+13125550101",
        text="Look!",
        subject="Photos",
        media_urls=[png_url, jpg_url],
    ).data
    assert resp is not None and resp.id
    assert resp.type == "MMS"
    assert resp.subject == "Photos"
    assert resp.parts == 1
    assert resp.media is not None and [m.url for m in resp.media] == [png_url, jpg_url]
    assert all(m.sha256 is None and m.size is None for m in resp.media)

    msg = final(client, resp.id)
    assert msg.to[0].status == "delivered"
    assert [(m.content_type, m.size, m.sha256) for m in msg.media] == [
        ("image/png", 50_000, png.sha256),
        ("image/jpeg", 120_000, jpg.sha256),
    ]
    got = receiver.wait_for(lambda rs: "message.finalized" in event_types(rs, resp.id or ""))
    assert event_types(got, resp.id) == ["message.sent", "message.finalized"]
    sent = events_for(got, resp.id)[0]["data"]["payload"]
    assert sent["type"] == "MMS"
    assert [m["sha256"] for m in sent["media"]] == [png.sha256, jpg.sha256]
    assert media.hits[png_url.removeprefix(media.base_url)] == 1


@pytest.mark.parametrize(
    ("declared", "head", "suffix", "expected"),
    [
        ("image/gif", GIF_HEAD, "", "image/gif"),
        (None, MP4_HEAD, "", "video/mp4"),
        (None, b"plain words", ".pdf", "application/pdf"),
        ("text/vcard; charset=utf-8", b"BEGIN:VCARD\r\n", ".vcf", "text/vcard"),
        ("binary/octet-stream", PNG_HEAD, ".bin", "image/png"),
        ("audio/amr", b"#!AMR\n", "", "audio/amr"),
    ],
)
def test_content_types(
    client: Telnyx,
    sender: Sender,
    media: MediaServer,
    declared: str | None,
    head: bytes,
    suffix: str,
    expected: str,
) -> None:
    url, served = media.add(2_048, declared, head=head, suffix=suffix)
    resp = client.messages.send(from_=sender.number, to="+13125550102", media_urls=[url]).data
    assert resp is not None and resp.id and resp.type == "MMS"
    msg = final(client, resp.id)
    assert msg.to[0].status == "delivered"
    assert msg.media[0].content_type == expected
    assert msg.media[0].sha256 == hashlib.sha256(served.body).hexdigest()


def test_total_up_to_one_megabyte_is_sent(
    client: Telnyx, sender: Sender, media: MediaServer
) -> None:
    urls = [media.add(MAX_TOTAL_BYTES // 4, "image/jpeg", head=JPEG_HEAD)[0] for _ in range(4)]
    resp = client.messages.send(from_=sender.number, to="+13125550103", media_urls=urls).data
    assert resp is not None and resp.id
    msg = final(client, resp.id)
    assert msg.to[0].status == "delivered"
    assert sum(m.size for m in msg.media) == MAX_TOTAL_BYTES


@pytest.mark.parametrize("layout", ["one_big", "total_over"])
def test_too_large_media_fail_with_40317(
    client: Telnyx, sender: Sender, media: MediaServer, receiver: WebhookReceiver, layout: str
) -> None:
    if layout == "one_big":
        urls = [media.add(1_500_000, "image/png", head=PNG_HEAD)[0]]
    else:
        urls = [media.add(400_000, "image/png", head=PNG_HEAD)[0] for _ in range(3)]
    resp = client.messages.send(from_=sender.number, to="+13125550104", media_urls=urls).data
    assert resp is not None and resp.id
    msg = final(client, resp.id)
    assert msg.to[0].status == "sending_failed"
    assert [e.code for e in msg.errors] == ["40317"]
    assert msg.errors[0].detail and "bytes" in msg.errors[0].detail
    assert msg.cost is not None and float(msg.cost.amount) == 0
    got = receiver.wait_for(lambda rs: "message.finalized" in event_types(rs, resp.id or ""))
    assert event_types(got, resp.id) == ["message.finalized"]
    payload = events_for(got, resp.id)[0]["data"]["payload"]
    assert payload["errors"][0]["code"] == "40317"


@pytest.mark.parametrize("where", ["refused", "http_404"])
def test_unreachable_media_fail_with_40317(
    client: Telnyx, sender: Sender, media: MediaServer, where: str
) -> None:
    ok, _ = media.add(1_000, "image/png", head=PNG_HEAD)
    bad = unreachable_url() if where == "refused" else media.base_url + "/m/does-not-exist.png"
    resp = client.messages.send(from_=sender.number, to="+13125550105", media_urls=[ok, bad]).data
    assert resp is not None and resp.id
    msg = final(client, resp.id)
    assert msg.to[0].status == "sending_failed"
    assert [e.code for e in msg.errors] == ["40317"]
    assert msg.errors[0].detail and msg.errors[0].detail.startswith("Media 1 ")
    assert ("answered HTTP 404" in msg.errors[0].detail) == (where == "http_404")


def test_media_urls_checked_at_the_api(client: Telnyx, sender: Sender, media: MediaServer) -> None:
    ok, _ = media.add(100, "image/png", head=PNG_HEAD)
    with pytest.raises(telnyx.BadRequestError) as info:
        client.messages.send(
            from_=sender.number, to="+13125550106", media_urls=[ok, "ftp://x/y.png"]
        )
    err = _error(info.value)
    assert (err["code"], err["source"]["pointer"]) == ("40317", "/media_urls/1")
    assert info.value.response.headers["x-should-retry"] == "false"
    with pytest.raises(telnyx.BadRequestError) as info:
        client.messages.send(from_=sender.number, to="+13125550106", media_urls=[ok] * 11)
    assert _error(info.value)["code"] == "40317"


def test_mms_to_a_destination_without_mms_is_refused(
    client: Telnyx, sender: Sender, media: MediaServer
) -> None:
    url, _ = media.add(100, "image/png", head=PNG_HEAD)
    with pytest.raises(telnyx.BadRequestError) as info:
        client.messages.send(from_=sender.number, to="+447700900123", text="hi", media_urls=[url])
    err = _error(info.value)
    assert (err["code"], err["source"]["pointer"]) == ("40301", "/to")
    # An SMS to the same destination is fine.
    sms = client.messages.send(from_=sender.number, to="+447700900123", text="hi").data
    assert sms is not None and sms.type == "SMS"


def test_fallback_to_sms_appends_the_media_links(
    client: Telnyx, receiver: WebhookReceiver, media: MediaServer
) -> None:
    sender = make_sender(
        client, receiver, unique_number(), destinations=["US", "GB"], mms_fall_back_to_sms=True
    )
    u1, _ = media.add(100, "image/png", head=PNG_HEAD)
    u2, _ = media.add(100, "image/gif", head=GIF_HEAD)
    resp = client.messages.send(
        from_=sender.number,
        to="+447700900124",
        text="Our menu",
        subject="Lunch",
        media_urls=[u1, u2],
    ).data
    assert resp is not None and resp.id
    assert resp.type == "SMS"
    assert resp.text == f"Lunch\nOur menu\n{u1}\n{u2}"
    assert resp.media == [] and resp.subject is None
    assert final(client, resp.id).to[0].status == "delivered"
    assert media.hits.get(u1.removeprefix(media.base_url), 0) == 0  # an SMS fetches nothing
    # A destination that takes MMS still gets an MMS.
    mms = client.messages.send(from_=sender.number, to="+13125550107", media_urls=[u1]).data
    assert mms is not None and mms.type == "MMS"


def test_on_net_mms_arrives_with_media_hashes(
    client: Telnyx,
    sender: Sender,
    other_account: Account,
    receiver: WebhookReceiver,
    media: MediaServer,
) -> None:
    theirs = make_sender(other_account.client, receiver, unique_number())
    url, served = media.add(3_000, "image/png", head=PNG_HEAD)
    resp = client.messages.send(
        from_=sender.number, to=theirs.number, text="pic", media_urls=[url]
    ).data
    assert resp is not None and resp.id

    def arrived(rs: list[Any]) -> bool:
        return any(r.json()["data"].get("event_type") == "message.received" for r in rs)

    got = receiver.wait_for(lambda rs: arrived([r for r in rs if r.path == theirs.hook_path]))
    inbound = next(
        r.json()["data"]["payload"]
        for r in got
        if r.path == theirs.hook_path and r.json()["data"]["event_type"] == "message.received"
    )
    assert inbound["type"] == "MMS"
    assert inbound["media"] == [
        {"url": url, "content_type": "image/png", "hash_sha256": served.sha256, "size": 3_000}
    ]
    event = other_account.client.webhooks.unwrap(
        next(r for r in got if r.path == theirs.hook_path).body.decode(),
        headers=next(r for r in got if r.path == theirs.hook_path).headers,
    )
    assert event is not None


def test_simulated_inbound_mms_carries_hashes(
    server: RunningServer, client: Telnyx, sender: Sender, account: Account, media: MediaServer
) -> None:
    url, served = media.add(4_096, None, head=JPEG_HEAD, suffix=".jpg")
    resp = httpx.post(
        f"{server.base_url}/simulator/inbound",
        headers={"Authorization": f"Bearer {account.api_key}"},
        json={
            "from": "+13125550188",
            "to": sender.number,
            "text": "from a phone",
            "media_urls": [url],
        },
    )
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    assert data["type"] == "MMS"
    assert data["media"] == [
        {"url": url, "content_type": "image/jpeg", "hash_sha256": served.sha256, "size": 4_096}
    ]
    msg = client.messages.retrieve(data["id"]).data
    assert msg is not None and msg.direction == "inbound"
    bad = httpx.post(
        f"{server.base_url}/simulator/inbound",
        headers={"Authorization": f"Bearer {account.api_key}"},
        json={"from": "+13125550188", "to": sender.number, "media_urls": [unreachable_url()]},
    )
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["code"] == "40317"
