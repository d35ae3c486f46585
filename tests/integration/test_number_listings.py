"""Routes clients call besides the messaging ones: `GET /phone_numbers` (and `/{id}`), messaging
profile metrics, and the 2.x SDKs' `/messaging_phone_numbers`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from telnyx import Telnyx

from tests.conftest import Account, unique_number
from tests.support.messaging import Sender, make_sender, wait_final
from tests.support.receiver import WebhookReceiver
from tests.support.server import RunningServer


@pytest.fixture
def raw(server: RunningServer, account: Account) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server.base_url}/v2",
        headers={"Authorization": f"Bearer {account.api_key}"},
        timeout=10,
    )


def test_phone_numbers_list_with_messaging_fields_and_filters(
    client: Telnyx, receiver: WebhookReceiver, raw: httpx.Client
) -> None:
    local = make_sender(client, receiver, unique_number("312"))
    toll_free = "+18335550" + unique_number()[-3:]
    client.number_orders.create(
        phone_numbers=[{"phone_number": toll_free}], messaging_profile_id=local.profile_id
    )
    client.phone_numbers.messaging.update(local.number, tags=["vip"])

    page = client.phone_numbers.list()
    numbers = {n.phone_number: n for n in page.data}
    assert set(numbers) == {local.number, toll_free}
    first = numbers[local.number]
    profile = client.messaging_profiles.retrieve(local.profile_id).data
    assert profile is not None
    assert first.messaging_profile_id == local.profile_id
    assert first.messaging_profile_name == profile.name
    assert first.phone_number_type == "local"
    assert first.status == "active"
    assert first.country_iso_alpha2 == "US"
    assert first.tags == ["vip"]
    assert numbers[toll_free].phone_number_type == "toll_free"

    def listed(**filters: Any) -> list[str]:
        return [n.phone_number for n in client.phone_numbers.list(**filters).data]

    assert listed(filter={"tag": "vip"}) == [local.number]
    assert listed(filter={"without_tags": "true"}) == [toll_free]
    assert listed(filter={"phone_number": local.number[-7:]}) == [local.number]
    assert listed(filter={"phone_number": "abc"}) == []
    assert listed(filter={"number_type": {"eq": "toll_free"}}) == [toll_free]
    assert sorted(listed(filter={"country_iso_alpha2": ["US", "CA"]})) == sorted(numbers)
    assert listed(filter={"country_iso_alpha2": "GB"}) == []
    assert sorted(listed(filter={"status": "active"})) == sorted(numbers)
    assert listed(filter={"status": "deleted"}) == []
    assert listed(filter={"source": "ported"}) == []
    assert listed(filter={"connection_id": "123"}) == []
    assert listed(filter={"voice_connection_name": {"contains": "abc"}}) == []
    assert sorted(listed(filter={"billing_group_id": "null"})) == sorted(numbers)
    assert listed(sort="phone_number") == sorted(numbers)
    assert listed(page_size=1, page_number=2) and len(listed(page_size=1)) == 1
    # Newest first by default.
    assert listed() == [toll_free, local.number]
    assert listed(sort="-phone_number") == sorted(numbers, reverse=True)
    assert listed(sort="purchased_at") == [local.number, toll_free]
    assert listed(sort="-purchased_at") == [toll_free, local.number]
    assert listed(filter={"number_type": {"eq": "local"}}) == [local.number]
    assert listed(filter={"number_type": {"eq": "mobile"}}) == []
    assert listed(filter={"number_type": {"eq": "national"}}) == []
    # A tag matches whole: not a part of another tag, and LIKE's wildcards are plain characters.
    client.phone_numbers.messaging.update(toll_free, tags=["vipx", "50%"])
    assert listed(filter={"tag": "vip"}) == [local.number]
    assert listed(filter={"tag": "50%"}) == [toll_free]
    assert listed(filter={"tag": "5"}) == [] and listed(filter={"tag": "%"}) == []
    assert listed(filter={"without_tags": "true"}) == []
    counted = raw.get("/phone_numbers", params={"filter[tag]": "vipx", "page[size]": 1}).json()
    assert counted["meta"]["total_results"] == 1 and len(counted["data"]) == 1

    one = client.phone_numbers.retrieve(first.id).data
    assert one is not None and one.phone_number == local.number
    assert one.messaging_profile_name == profile.name
    by_number = client.phone_numbers.retrieve(local.number).data
    assert by_number is not None and by_number.id == first.id

    bad = raw.get("/phone_numbers", params={"filter[status]": "sleeping"})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["source"] == {"parameter": "filter[status]"}
    bad = raw.get("/phone_numbers", params={"sort": "color"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["code"] == "10015"
    assert raw.get("/phone_numbers/+19995550000").status_code == 404


def test_phone_numbers_are_the_organizations_own(
    client: Telnyx, other_account: Account, receiver: WebhookReceiver
) -> None:
    mine = make_sender(client, receiver, unique_number())
    assert other_account.client.phone_numbers.list().data == []
    from telnyx import NotFoundError

    with pytest.raises(NotFoundError):
        other_account.client.phone_numbers.retrieve(mine.number)


def _inbound(server: RunningServer, account: Account, to: str) -> None:
    r = httpx.post(
        f"{server.base_url}/simulator/inbound",
        json={"from": "+13125550390", "to": to, "text": "hello there"},
        headers={"Authorization": f"Bearer {account.api_key}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text


def test_profile_metrics_from_stored_messages(
    server: RunningServer, account: Account, sender: Sender, raw: httpx.Client
) -> None:
    client = account.client
    costs = Decimal(0)
    for to in ("+13125550100", "+13125550101", "+13125550110"):  # 2 delivered, 1 failed
        m = client.messages.send(from_=sender.number, to=to, text="metrics").data
        assert m is not None and m.id
        final = wait_final(client, m.id)
        if final.cost is not None and final.cost.amount is not None:
            costs += Decimal(final.cost.amount)
    _inbound(server, account, sender.number)

    detail = client.messaging_profiles.retrieve_metrics(sender.profile_id, time_frame="1h").data
    assert detail is not None
    overview: Any = detail["overview"]
    assert overview["record_type"] == "messaging_profile_metrics"
    assert overview["messaging_profile_id"] == sender.profile_id
    assert overview["phone_numbers"] == 1
    assert overview["outbound"] == {
        "sent": 3,
        "delivered": 2,
        "failed": 1,
        "error_ratio": round(1 / 3, 4),
    }
    assert overview["inbound"] == {"received": 1}
    assert Decimal(overview["spend"]["amount"]) >= costs
    buckets: Any = detail["detailed"]
    assert len(buckets) == 12  # 1 h in 5-minute buckets
    sms = [m for b in buckets for m in b["metrics"] if m["label"] == "SMS"]
    assert sum(m["sent"] for m in sms) == 3
    assert sum(m["received"] for m in sms) == 1

    listed = client.messaging_profile_metrics.list(time_frame="24h")
    assert listed.data is not None and listed.meta is not None
    mine = [d for d in listed.data if d["messaging_profile_id"] == sender.profile_id]
    assert mine and mine[0]["outbound"] == overview["outbound"]
    only = raw.get("/messaging_profile_metrics", params={"id": sender.profile_id}).json()
    assert [d["messaging_profile_id"] for d in only["data"]] == [sender.profile_id]
    assert only["meta"]["total_results"] == 1

    bad = raw.get(f"/messaging_profiles/{sender.profile_id}/metrics", params={"time_frame": "2h"})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["source"] == {"parameter": "time_frame"}
    assert raw.get("/messaging_profiles/nope/metrics").status_code == 404


def test_legacy_messaging_phone_numbers_paths(
    client: Telnyx, sender: Sender, raw: httpx.Client
) -> None:
    legacy = raw.get("/messaging_phone_numbers").json()
    current = raw.get("/phone_numbers/messaging").json()
    assert legacy == current
    assert [n["phone_number"] for n in legacy["data"]] == [sender.number]
    number_id = legacy["data"][0]["id"]
    one = raw.get(f"/messaging_phone_numbers/{number_id}")
    assert one.status_code == 200
    assert one.json() == raw.get(f"/phone_numbers/{number_id}/messaging").json()
    patched = raw.patch(f"/messaging_phone_numbers/{number_id}", json={"tags": ["legacy"]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"]["tags"] == ["legacy"]
    assert patched.json()["data"]["record_type"] == "messaging_phone_number"
    assert raw.get("/messaging_phone_numbers/+19995550000").status_code == 404
