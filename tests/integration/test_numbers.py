"""The number inventory through the official SDK: number orders, phone numbers with messaging
settings, mobile numbers, short codes, alphanumeric sender IDs, and the `numbers` CLI
(contract §7.2–7.5, §4.7, §4.8)."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import telnyx
from sqlalchemy import insert, select
from telnyx import Telnyx
from typer.testing import CliRunner

from signalpost.cli import app as cli_app
from signalpost.context import AppContext
from signalpost.kit.clock import utcnow
from signalpost.kit.ids import new_uuid
from signalpost.models import messages, phone_numbers, short_codes
from signalpost.numbers import service
from tests.conftest import Account, unique_number
from tests.support.server import RunningServer

_mobile_counter = itertools.count(1)


def unique_mobile() -> str:
    """A German mobile number (`phonenumbers` knows it is MOBILE) that no other test uses."""
    return f"+49151{(os.getpid() % 1000) * 10000 + next(_mobile_counter):08d}"


def create_profile(client: Telnyx, name: str | None = None) -> str:
    profile = client.messaging_profiles.create(
        name=name or f"profile {uuid.uuid4().hex[:8]}", whitelisted_destinations=["US"]
    ).data
    assert profile is not None and profile.id
    return profile.id


def order(client: Telnyx, *numbers: str, **fields: Any) -> Any:
    data = client.number_orders.create(
        phone_numbers=[{"phone_number": n} for n in numbers], **fields
    ).data
    assert data is not None
    return data


def error_of(exc: telnyx.APIStatusError) -> dict[str, Any]:
    body = exc.body
    assert isinstance(body, dict), body
    first: dict[str, Any] = body["errors"][0]
    return first


def add_short_code(server: RunningServer, account: Account, code: str, **kw: Any) -> str:
    """Short codes have no create operation in the API; the CLI and this helper use the service."""

    async def go(ctx: AppContext) -> str:
        async with ctx.db.transaction() as uow:
            row = await service.add_short_code(uow, account.org.id, code, **kw)
            return str(row["id"])

    return server.run(go)


_code_counter = itertools.count(10)


def unique_short_code() -> str:
    return f"{(os.getpid() % 90 + 10)}{next(_code_counter):04d}"


@pytest.fixture
def raw(server: RunningServer, account: Account) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=f"{server.base_url}/v2", headers={"Authorization": f"Bearer {account.api_key}"}
    ) as c:
        yield c


# --- number orders ----------------------------------------------------------------------------


def test_number_order_completes_at_once(client: Telnyx, account: Account) -> None:
    profile_id = create_profile(client)
    a, b = unique_number(), unique_number()
    data = order(
        client,
        a,
        b,
        messaging_profile_id=profile_id,
        customer_reference="ref-1",
        connection_id="conn-9",
        billing_group_id="bg-3",
    )
    assert data.status == "success"
    assert data.record_type == "number_order"
    assert data.phone_numbers_count == 2
    assert data.messaging_profile_id == profile_id
    assert data.customer_reference == "ref-1"
    assert data.connection_id == "conn-9" and data.billing_group_id == "bg-3"
    assert data.requirements_met is True
    assert data.phone_numbers is not None
    assert [n.phone_number for n in data.phone_numbers] == [a, b]
    for item in data.phone_numbers:
        assert item.status == "success"
        assert item.phone_number_type == "local"
        assert item.country_code == "US" and item.country_iso_alpha2 == "US"
        assert item.id

    assert data.id
    again = client.number_orders.retrieve(data.id).data
    assert again is not None and again.id == data.id and again.status == "success"

    listed = list(client.number_orders.list())
    assert [o.id for o in listed] == [data.id]
    assert listed[0].phone_numbers is not None
    assert {n.phone_number for n in listed[0].phone_numbers} == {a, b}
    assert [o.id for o in client.number_orders.list(filter={"customer_reference": "ref-1"})] == [
        data.id
    ]
    assert list(client.number_orders.list(filter={"customer_reference": "nope"})) == []
    assert len(list(client.number_orders.list(filter={"status": "success"}))) == 1
    assert list(client.number_orders.list(filter={"status": "pending"})) == []
    assert len(list(client.number_orders.list(filter={"phone_numbers_count": "2"}))) == 1
    assert list(client.number_orders.list(filter={"phone_numbers_count": "3"})) == []

    updated = client.number_orders.update(data.id, customer_reference="ref-2").data
    assert updated is not None and updated.customer_reference == "ref-2"

    # The order's numbers are in the inventory, on the profile, addressable by the order's ids.
    for item in data.phone_numbers:
        assert item.id is not None
        number = client.phone_numbers.messaging.retrieve(item.id).data
        assert number is not None
        assert number.phone_number == item.phone_number
        assert number.messaging_profile_id == profile_id
        assert number.organization_id == account.org.id


def test_number_types_and_countries(client: Telnyx) -> None:
    local, toll_free, mobile = unique_number(), unique_number("833"), unique_mobile()
    items = order(client, local, toll_free, mobile).phone_numbers
    assert [i.phone_number_type for i in items] == ["local", "toll_free", "mobile"]
    by_number = {n.phone_number: n for n in client.phone_numbers.messaging.list()}
    assert by_number[local].type == "long-code"
    assert by_number[toll_free].type == "toll-free"
    assert by_number[mobile].type == "long-code"
    assert by_number[local].country_code == "US"
    assert by_number[mobile].country_code == "DE"
    features = by_number[local].features
    assert features is not None and features.sms is not None and features.mms is not None
    assert features.sms.international_outbound is True
    assert features.mms.domestic_two_way is True
    mobile_features = by_number[mobile].features
    assert mobile_features is not None and mobile_features.mms is None

    tollfree_only = client.phone_numbers.messaging.list(filter_type="tollfree")
    assert [n.phone_number for n in tollfree_only] == [toll_free]
    longcodes = client.phone_numbers.messaging.list(filter_type="longcode")
    assert {n.phone_number for n in longcodes} == {local, mobile}
    assert list(client.phone_numbers.messaging.list(filter_type="shortcode")) == []


def test_order_with_an_owned_number_is_rejected_whole(
    client: Telnyx, other_account: Account
) -> None:
    taken = unique_number()
    order(client, taken)
    fresh = unique_number()
    for who in (client, other_account.client):
        with pytest.raises(telnyx.UnprocessableEntityError) as exc:
            order(who, fresh, taken)
        err = error_of(exc.value)
        assert err["code"] == "10012"
        assert err["source"]["pointer"] == "/phone_numbers/1/phone_number"
        assert taken in err["detail"]
    # Nothing of the rejected orders was stored.
    assert [n.phone_number for n in client.phone_numbers.messaging.list()] == [taken]
    assert list(other_account.client.phone_numbers.messaging.list()) == []
    assert len(list(client.number_orders.list())) == 1


@pytest.mark.parametrize(
    ("numbers", "code", "pointer"),
    [
        (["13125550100"], "10016", "/phone_numbers/0/phone_number"),
        (["+1 312 555 0100"], "10016", "/phone_numbers/0/phone_number"),
        (["+12"], "10016", "/phone_numbers/0/phone_number"),
        (["hello"], "10016", "/phone_numbers/0/phone_number"),
        ([None, "+99"], "10016", "/phone_numbers/1/phone_number"),
        (["DUP", "DUP"], "10012", "/phone_numbers/1/phone_number"),
    ],
)
def test_order_rejects_bad_numbers(
    raw: httpx.Client, numbers: list[str | None], code: str, pointer: str
) -> None:
    dup = unique_number()
    items = [{"phone_number": dup if n == "DUP" else n or unique_number()} for n in numbers]
    r = raw.post("/number_orders", json={"phone_numbers": items})
    assert r.status_code == 422, r.text
    err = r.json()["errors"][0]
    assert err["code"] == code
    assert err["source"]["pointer"] == pointer
    assert raw.get("/phone_numbers/messaging").json()["data"] == []


def test_order_body_errors(raw: httpx.Client, other_account: Account) -> None:
    r = raw.post("/number_orders", json={})
    assert r.status_code == 422
    assert r.json()["errors"][0]["code"] == "10004"
    assert r.json()["errors"][0]["source"]["pointer"] == "/phone_numbers"
    r = raw.post("/number_orders", json={"phone_numbers": []})
    assert r.status_code == 422
    assert r.json()["errors"][0]["source"]["pointer"] == "/phone_numbers"
    r = raw.post("/number_orders", json={"phone_numbers": [{"phone_number": 13125550100}]})
    assert r.status_code == 422
    assert r.json()["errors"][0]["source"]["pointer"] == "/phone_numbers/0/phone_number"
    foreign = create_profile(other_account.client)
    r = raw.post(
        "/number_orders",
        json={
            "phone_numbers": [{"phone_number": unique_number()}],
            "messaging_profile_id": foreign,
        },
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["code"] == "10017"
    assert r.json()["errors"][0]["source"]["pointer"] == "/messaging_profile_id"


# --- listing, filtering, sorting, paging ------------------------------------------------------


def test_list_filters_sort_and_pages(client: Telnyx, raw: httpx.Client) -> None:
    profile_id = create_profile(client)
    numbers = sorted(unique_number("646") for _ in range(7))
    order(client, *numbers[:3], messaging_profile_id=profile_id)
    order(client, *numbers[3:])
    messaging = client.phone_numbers.messaging

    everything = list(messaging.list(page_size=2))  # auto-paginates over 4 pages
    assert sorted(n.phone_number for n in everything) == numbers
    first = messaging.list(page_size=2)
    assert first.meta is not None
    assert (first.meta.total_pages, first.meta.page_number) == (4, 1)
    wire = raw.get("/phone_numbers/messaging", params={"page[size]": 2, "page[number]": 4}).json()
    assert wire["meta"] == {"page_number": 4, "page_size": 2, "total_pages": 4, "total_results": 7}
    assert len(wire["data"]) == 1
    beyond = raw.get("/phone_numbers/messaging", params={"page[size]": 2, "page[number]": 9})
    assert beyond.json()["data"] == []

    asc = [n.phone_number for n in messaging.list(sort_phone_number="asc")]
    desc = [n.phone_number for n in messaging.list(sort_phone_number="desc")]
    assert asc == numbers and desc == numbers[::-1]

    on_profile = messaging.list(filter_messaging_profile_id=profile_id)
    assert sorted(n.phone_number for n in on_profile) == numbers[:3]
    unassigned = messaging.list(filter_messaging_profile_id="null")
    assert sorted(n.phone_number for n in unassigned) == numbers[3:]
    assert list(messaging.list(filter_messaging_profile_id=str(uuid.uuid4()))) == []

    exact = messaging.list(filter_phone_number=numbers[4])
    assert [n.phone_number for n in exact] == [numbers[4]]
    several = messaging.list(filter_phone_number=f"{numbers[0]},{numbers[6]}")
    assert sorted(n.phone_number for n in several) == [numbers[0], numbers[6]]
    # A `+` sent unencoded by a hand-written query arrives as a space and still matches.
    plain = raw.get(f"/phone_numbers/messaging?filter[phone_number]={numbers[2]}")
    assert [n["phone_number"] for n in plain.json()["data"]] == [numbers[2]]

    tail = numbers[5][-6:]
    contains = messaging.list(filter_phone_number_contains=tail)
    assert [n.phone_number for n in contains] == [numbers[5]]
    assert len(list(messaging.list(filter_phone_number_contains="+1646"))) == 7
    assert list(messaging.list(filter_phone_number_contains="%")) == []


def test_retrieve_by_id_and_by_e164(client: Telnyx, raw: httpx.Client) -> None:
    number = unique_number()
    item = order(client, number).phone_numbers[0]
    by_id = client.phone_numbers.messaging.retrieve(item.id).data
    by_e164 = client.phone_numbers.messaging.retrieve(number).data
    assert by_id is not None and by_e164 is not None
    assert by_id.id == by_e164.id == item.id
    assert by_id.record_type == "messaging_phone_number"
    assert by_id.messaging_product == "P2P"
    assert by_id.eligible_messaging_products and "P2P" in by_id.eligible_messaging_products
    assert by_id.health is not None
    assert by_id.health.message_count == 0 and by_id.health.success_ratio == 1.0
    assert by_id.tags == []
    # Percent-encoded `+`, and the number without its `+`.
    assert raw.get(f"/phone_numbers/%2B{number[1:]}/messaging").json()["data"]["id"] == item.id
    assert raw.get(f"/phone_numbers/{number[1:]}/messaging").json()["data"]["id"] == item.id
    with pytest.raises(telnyx.NotFoundError) as exc:
        client.phone_numbers.messaging.retrieve("+13129999999")
    assert error_of(exc.value)["code"] == "10005"


def test_health_is_computed_from_messages(
    client: Telnyx, server: RunningServer, account: Account
) -> None:
    number = unique_number()
    order(client, number)
    other = unique_number("917")
    rows: list[tuple[str, str, str, list[dict[str, str]]]] = [
        ("outbound", number, "delivered", []),
        ("outbound", number, "delivered", []),
        ("outbound", number, "delivery_failed", [{"code": "40002", "title": "Spam"}]),
        ("outbound", number, "sent", []),
        ("inbound", other, "webhook_delivered", []),
        ("inbound", other, "webhook_delivered", []),
    ]

    async def go(ctx: AppContext) -> dict[str, Any]:
        now = utcnow()
        async with ctx.db.transaction() as uow:
            for direction, peer, status, errors in rows:
                outbound = direction == "outbound"
                await uow.conn.execute(
                    insert(messages).values(
                        id=new_uuid(),
                        organization_id=account.org.id,
                        direction=direction,
                        type="SMS",
                        from_number=number if outbound else peer,
                        to_number=other if outbound else number,
                        to_status=status,
                        cc=[],
                        media=[],
                        encoding="GSM-7",
                        parts=1,
                        num_chars=2,
                        tags=[],
                        errors=errors,
                        received_at=now,
                        updated_at=now,
                    )
                )
            return await service.number_health(uow, account.org.id, number)

    health = server.run(go)
    assert health == {
        "inbound_outbound_ratio": 0.5,
        "message_count": 4,
        "spam_ratio": 0.25,
        "success_ratio": 0.6667,
    }
    got = client.phone_numbers.messaging.retrieve(number).data
    assert got is not None and got.health is not None
    assert got.health.message_count == 4 and got.health.spam_ratio == 0.25
    listed = client.phone_numbers.messaging.list(filter_phone_number=number)
    assert [n.health.success_ratio for n in listed if n.health] == [0.6667]


# --- updating messaging settings --------------------------------------------------------------


def test_patch_assign_unassign_product_and_tags(client: Telnyx, raw: httpx.Client) -> None:
    profile_a, profile_b = create_profile(client), create_profile(client)
    number = unique_number()
    number_id = order(client, number).phone_numbers[0].id
    messaging = client.phone_numbers.messaging

    got = messaging.update(number, messaging_profile_id=profile_a, tags=["x", "y"]).data
    assert got is not None
    assert got.messaging_profile_id == profile_a and got.tags == ["x", "y"]
    assert got.updated_at is not None and got.created_at is not None
    assert got.updated_at >= got.created_at

    got = messaging.update(number_id, messaging_profile_id=profile_b).data
    assert got is not None and got.messaging_profile_id == profile_b and got.tags == ["x", "y"]

    # null and omitted keep the value; tags are replaced as a whole.
    r = raw.patch(
        f"/phone_numbers/{number}/messaging",
        json={"messaging_profile_id": None, "messaging_product": None, "tags": ["z"]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["messaging_profile_id"] == profile_b
    assert r.json()["data"]["tags"] == ["z"]

    got = messaging.update(number_id, messaging_product="a2p").data
    assert got is not None and got.messaging_product == "A2P" and got.traffic_type == "A2P"

    got = messaging.update(number_id, messaging_profile_id="").data
    assert got is not None and got.messaging_profile_id is None
    assert got.messaging_product == "A2P" and got.tags == ["z"]


def test_patch_errors(client: Telnyx, raw: httpx.Client, other_account: Account) -> None:
    number = unique_number()
    order(client, number)
    foreign = create_profile(other_account.client)
    with pytest.raises(telnyx.UnprocessableEntityError) as exc:
        client.phone_numbers.messaging.update(number, messaging_profile_id=foreign)
    err = error_of(exc.value)
    assert err["code"] == "10017" and err["source"]["pointer"] == "/messaging_profile_id"
    with pytest.raises(telnyx.UnprocessableEntityError) as exc:
        client.phone_numbers.messaging.update(number, messaging_profile_id=str(uuid.uuid4()))
    assert error_of(exc.value)["source"]["pointer"] == "/messaging_profile_id"
    with pytest.raises(telnyx.UnprocessableEntityError) as exc:
        client.phone_numbers.messaging.update(number, messaging_product="PREMIUM")
    assert error_of(exc.value)["source"]["pointer"] == "/messaging_product"
    r = raw.patch(f"/phone_numbers/{number}/messaging", json={"tags": "x"})
    assert r.status_code == 422 and r.json()["errors"][0]["source"]["pointer"] == "/tags"
    r = raw.patch(f"/phone_numbers/{number}/messaging", json={"tags": [1]})
    assert r.status_code == 422 and r.json()["errors"][0]["source"]["pointer"] == "/tags/0"
    with pytest.raises(telnyx.NotFoundError):
        client.phone_numbers.messaging.update("+13129999998", tags=[])
    got = client.phone_numbers.messaging.retrieve(number).data
    assert got is not None and got.messaging_profile_id is None


def test_deleting_a_profile_unassigns_its_numbers(client: Telnyx) -> None:
    profile_id = create_profile(client)
    number = unique_number()
    order(client, number, messaging_profile_id=profile_id)
    client.messaging_profiles.delete(profile_id)
    got = client.phone_numbers.messaging.retrieve(number).data
    assert got is not None and got.messaging_profile_id is None


# --- mobile numbers ---------------------------------------------------------------------------


def test_mobile_numbers_list_and_retrieve(client: Telnyx) -> None:
    mobile, landline = unique_mobile(), unique_number()
    items = order(client, mobile, landline).phone_numbers
    mobiles = list(client.mobile_phone_numbers.messaging.list())
    assert [m.phone_number for m in mobiles] == [mobile]
    assert mobiles[0].type == "longcode"
    assert mobiles[0].features is not None and mobiles[0].features.sms is not None
    got = client.mobile_phone_numbers.messaging.retrieve(mobile).data
    assert got is not None and got.id == items[0].id
    assert client.mobile_phone_numbers.messaging.retrieve(items[0].id).data is not None
    with pytest.raises(telnyx.NotFoundError):
        client.mobile_phone_numbers.messaging.retrieve(landline)


# --- short codes ------------------------------------------------------------------------------


def test_short_codes(client: Telnyx, server: RunningServer, account: Account) -> None:
    profile_id = create_profile(client)
    code_a, code_b = unique_short_code(), unique_short_code()
    a = add_short_code(server, account, code_a, profile_id=profile_id)
    b = add_short_code(server, account, code_b, country_code="CA")

    listed = list(client.short_codes.list())
    assert [(s.id, s.short_code, s.country_code) for s in listed] == [
        (a, code_a, "US"),
        (b, code_b, "CA"),
    ]
    assert [s.id for s in client.short_codes.list(filter={"messaging_profile_id": profile_id})] == [
        a
    ]
    assert [s.id for s in client.short_codes.list(filter={"messaging_profile_id": "null"})] == [b]
    assert len(list(client.short_codes.list(page_size=1))) == 2

    got = client.short_codes.retrieve(b).data
    assert got is not None and got.record_type == "short_code" and got.messaging_profile_id is None
    got = client.short_codes.update(b, messaging_profile_id=profile_id, tags=["promo"]).data
    assert got is not None and got.messaging_profile_id == profile_id and got.tags == ["promo"]
    got = client.short_codes.update(a, messaging_profile_id="").data
    assert got is not None and got.messaging_profile_id is None

    with pytest.raises(telnyx.UnprocessableEntityError) as exc:
        client.short_codes.update(a, messaging_profile_id=str(uuid.uuid4()))
    assert error_of(exc.value)["source"]["pointer"] == "/messaging_profile_id"
    with pytest.raises(telnyx.NotFoundError):
        client.short_codes.retrieve(str(uuid.uuid4()))

    # The same code and country cannot be provisioned twice on the server.
    with pytest.raises(Exception, match="already exists"):
        add_short_code(server, account, code_a)


# --- alphanumeric sender IDs ------------------------------------------------------------------


def test_alphanumeric_sender_ids_crud(client: Telnyx, account: Account) -> None:
    profile_a, profile_b = create_profile(client), create_profile(client)
    fallback = unique_number()
    order(client, fallback)
    ids = client.alphanumeric_sender_ids
    first = ids.create(
        alphanumeric_sender_id="Acme",
        messaging_profile_id=profile_a,
        us_long_code_fallback=fallback,
    ).data
    second = ids.create(alphanumeric_sender_id="Acme Co 42", messaging_profile_id=profile_b).data
    assert first is not None and second is not None and first.id and second.id
    assert first.record_type == "alphanumeric_sender_id"
    assert first.organization_id == account.org.id
    assert first.us_long_code_fallback == fallback
    assert second.us_long_code_fallback is None

    assert [s.id for s in ids.list()] == [first.id, second.id]
    assert [s.id for s in ids.list(filter_messaging_profile_id=profile_b)] == [second.id]
    assert len(list(ids.list(page_size=1))) == 2
    got = ids.retrieve(first.id).data
    assert got is not None and got.alphanumeric_sender_id == "Acme"

    deleted = ids.delete(first.id).data
    assert deleted is not None and deleted.id == first.id
    with pytest.raises(telnyx.NotFoundError):
        ids.retrieve(first.id)
    with pytest.raises(telnyx.NotFoundError):
        ids.delete(first.id)
    assert [s.id for s in ids.list()] == [second.id]


@pytest.mark.parametrize(
    ("fields", "code", "pointer"),
    [
        ({"alphanumeric_sender_id": "12345"}, "10015", "/alphanumeric_sender_id"),
        ({"alphanumeric_sender_id": "TwelveLetter"}, "10015", "/alphanumeric_sender_id"),
        ({"alphanumeric_sender_id": "Acme-Co"}, "10015", "/alphanumeric_sender_id"),
        ({"alphanumeric_sender_id": ""}, "10015", "/alphanumeric_sender_id"),
        ({"alphanumeric_sender_id": None}, "10015", "/alphanumeric_sender_id"),
        ({"messaging_profile_id": "FOREIGN"}, "10017", "/messaging_profile_id"),
        ({"messaging_profile_id": "UNKNOWN"}, "10017", "/messaging_profile_id"),
        ({"us_long_code_fallback": "3125550100"}, "10016", "/us_long_code_fallback"),
        ({"us_long_code_fallback": "UNOWNED"}, "10017", "/us_long_code_fallback"),
        ({"alphanumeric_sender_id": "DUPLICATE"}, "10012", "/alphanumeric_sender_id"),
    ],
)
def test_alphanumeric_sender_id_validation(
    client: Telnyx,
    raw: httpx.Client,
    other_account: Account,
    fields: dict[str, Any],
    code: str,
    pointer: str,
) -> None:
    profile_id = create_profile(client)
    body: dict[str, Any] = {"alphanumeric_sender_id": "Acme", "messaging_profile_id": profile_id}
    body.update(fields)
    if body["messaging_profile_id"] == "FOREIGN":
        body["messaging_profile_id"] = create_profile(other_account.client)
    if body["messaging_profile_id"] == "UNKNOWN":
        body["messaging_profile_id"] = str(uuid.uuid4())
    if body.get("us_long_code_fallback") == "UNOWNED":
        body["us_long_code_fallback"] = unique_number()
    if body["alphanumeric_sender_id"] == "DUPLICATE":
        body["alphanumeric_sender_id"] = "Dup"
        assert raw.post("/alphanumeric_sender_ids", json=body).status_code == 200
    r = raw.post("/alphanumeric_sender_ids", json=body)
    assert r.status_code == 422, r.text
    err = r.json()["errors"][0]
    assert (err["code"], err["source"]["pointer"]) == (code, pointer)


def test_missing_alphanumeric_fields_are_10004(raw: httpx.Client) -> None:
    r = raw.post("/alphanumeric_sender_ids", json={"alphanumeric_sender_id": "Acme"})
    assert r.status_code == 422
    err = r.json()["errors"][0]
    assert (err["code"], err["source"]["pointer"]) == ("10004", "/messaging_profile_id")


# --- organization isolation -------------------------------------------------------------------


def test_another_organization_sees_nothing(
    client: Telnyx, server: RunningServer, account: Account, other_account: Account
) -> None:
    profile_id = create_profile(client)
    number = unique_number()
    data = order(client, number, messaging_profile_id=profile_id)
    number_id = data.phone_numbers[0].id
    short_code_id = add_short_code(server, account, unique_short_code())
    sender = client.alphanumeric_sender_ids.create(
        alphanumeric_sender_id="Mine", messaging_profile_id=profile_id
    ).data
    assert sender is not None and sender.id
    mobile = unique_mobile()
    order(client, mobile)

    them = other_account.client
    for call in (
        lambda: them.phone_numbers.messaging.retrieve(number),
        lambda: them.phone_numbers.messaging.retrieve(number_id),
        lambda: them.phone_numbers.messaging.update(number, tags=["stolen"]),
        lambda: them.mobile_phone_numbers.messaging.retrieve(mobile),
        lambda: them.number_orders.retrieve(data.id),
        lambda: them.short_codes.retrieve(short_code_id),
        lambda: them.short_codes.update(short_code_id, messaging_profile_id=""),
        lambda: them.alphanumeric_sender_ids.retrieve(sender.id),
        lambda: them.alphanumeric_sender_ids.delete(sender.id),
    ):
        with pytest.raises(telnyx.NotFoundError):
            call()
    assert list(them.phone_numbers.messaging.list()) == []
    assert list(them.phone_numbers.messaging.list(filter_messaging_profile_id=profile_id)) == []
    assert list(them.mobile_phone_numbers.messaging.list()) == []
    assert list(them.number_orders.list()) == []
    assert list(them.short_codes.list()) == []
    assert list(them.alphanumeric_sender_ids.list()) == []
    with pytest.raises(telnyx.UnprocessableEntityError):
        them.alphanumeric_sender_ids.create(
            alphanumeric_sender_id="Theirs", messaging_profile_id=profile_id
        )
    # Untouched.
    got = client.phone_numbers.messaging.retrieve(number).data
    assert got is not None and got.tags == [] and got.messaging_profile_id == profile_id
    assert client.alphanumeric_sender_ids.retrieve(sender.id).data is not None


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "status", "code", "parameter"),
    [
        ("/phone_numbers/messaging", {"filter[type]": "landline"}, 400, "10015", "filter[type]"),
        (
            "/phone_numbers/messaging",
            {"sort[phone_number]": "up"},
            400,
            "10015",
            "sort[phone_number]",
        ),
        ("/phone_numbers/messaging", {"page[size]": "0"}, 400, "10015", "page[size]"),
        ("/phone_numbers/messaging", {"page[size]": "251"}, 400, "10015", "page[size]"),
        ("/phone_numbers/messaging", {"page[number]": "0"}, 400, "10015", "page[number]"),
        ("/phone_numbers/messaging", {"page[number]": "x"}, 400, "10015", "page[number]"),
        ("/mobile_phone_numbers/messaging", {"page[size]": "251"}, 400, "10015", "page[size]"),
        ("/short_codes", {"page[size]": "0"}, 400, "10015", "page[size]"),
        ("/alphanumeric_sender_ids", {"page[size]": "251"}, 400, "10015", "page[size]"),
        ("/number_orders", {"page[size]": "0"}, 400, "10015", "page[size]"),
        ("/number_orders", {"filter[status]": "done"}, 400, "10015", "filter[status]"),
        (
            "/number_orders",
            {"filter[created_at][gt]": "yesterday"},
            400,
            "10015",
            "filter[created_at][gt]",
        ),
    ],
)
def test_bad_query_parameters(
    raw: httpx.Client,
    path: str,
    params: dict[str, str],
    status: int,
    code: str,
    parameter: str,
) -> None:
    r = raw.get(path, params=params)
    assert r.status_code == status, r.text
    err = r.json()["errors"][0]
    assert (err["code"], err["source"]["parameter"]) == (code, parameter)


@pytest.mark.parametrize(
    "path",
    [
        "/phone_numbers/1293384261075731499/messaging",
        "/phone_numbers/+13129999997/messaging",
        "/mobile_phone_numbers/1293384261075731499/messaging",
        f"/number_orders/{uuid.uuid4()}",
        f"/short_codes/{uuid.uuid4()}",
        f"/alphanumeric_sender_ids/{uuid.uuid4()}",
        "/alphanumeric_sender_ids/not-an-id",
    ],
)
def test_unknown_ids_are_404(raw: httpx.Client, path: str) -> None:
    r = raw.get(path)
    assert r.status_code == 404, r.text
    assert r.json()["errors"][0]["code"] == "10005"


def test_the_sdk_gets_404_with_the_envelope(client: Telnyx) -> None:
    with pytest.raises(telnyx.NotFoundError) as exc:
        client.number_orders.retrieve(str(uuid.uuid4()))
    assert error_of(exc.value)["code"] == "10005"


# --- the CLI ----------------------------------------------------------------------------------


def cli(server: RunningServer, account: Account, *args: str) -> Any:
    result = CliRunner().invoke(
        cli_app,
        [
            "numbers",
            *args,
            "--org",
            account.org.id,
            "--database-url",
            server.settings.database_url,
        ],
    )
    return result


def test_cli_adds_and_lists_numbers(
    client: Telnyx, server: RunningServer, account: Account
) -> None:
    profile_id = create_profile(client)
    a, b = unique_number(), unique_number()
    result = cli(server, account, "add", a, b, "--mobile", "--profile", profile_id)
    assert result.exit_code == 0, result.output
    assert a in result.output and b in result.output and "mobile" in result.output

    got = client.phone_numbers.messaging.retrieve(a).data
    assert got is not None and got.messaging_profile_id == profile_id
    assert sorted(m.phone_number for m in client.mobile_phone_numbers.messaging.list()) == [a, b]
    assert len(list(client.number_orders.list())) == 1

    listed = cli(server, account, "list")
    assert listed.exit_code == 0, listed.output
    assert a in listed.output and b in listed.output

    again = cli(server, account, "add", a)
    assert again.exit_code == 2
    assert "already in your inventory" in again.output
    bad = cli(server, account, "add", "12345")
    assert bad.exit_code == 2 and "E.164" in bad.output


def test_cli_short_code_whatsapp_and_rate_limit(
    client: Telnyx, server: RunningServer, account: Account
) -> None:
    number = unique_number()
    order(client, number)
    code = unique_short_code()
    result = cli(server, account, "add-short-code", code, "--country", "GB")
    assert result.exit_code == 0, result.output
    assert [(s.short_code, s.country_code) for s in client.short_codes.list()] == [(code, "GB")]

    assert cli(server, account, "whatsapp", "enable", number).exit_code == 0
    assert cli(server, account, "rate-limit", number, "2.5").exit_code == 0
    assert cli(server, account, "rate-limit", code, "100").exit_code == 0

    async def read(ctx: AppContext) -> tuple[Any, Any]:
        async with ctx.db.transaction() as uow:
            n = (
                await uow.conn.execute(
                    select(phone_numbers.c.whatsapp_enabled, phone_numbers.c.rate_limit).where(
                        phone_numbers.c.phone_number == number
                    )
                )
            ).one()
            s = (
                await uow.conn.execute(
                    select(short_codes.c.rate_limit).where(short_codes.c.short_code == code)
                )
            ).one()
            return tuple(n), s[0]

    assert server.run(read) == ((True, 2.5), 100.0)
    assert cli(server, account, "whatsapp", "disable", number).exit_code == 0
    assert cli(server, account, "rate-limit", number, "none").exit_code == 0
    assert server.run(read) == ((False, None), 100.0)

    assert cli(server, account, "rate-limit", number, "0").exit_code == 2
    assert cli(server, account, "rate-limit", number, "fast").exit_code == 2
    assert cli(server, account, "whatsapp", "toggle", number).exit_code == 2
    assert cli(server, account, "whatsapp", "enable", "+13129999996").exit_code == 1
    assert cli(server, account, "add-short-code", "12").exit_code == 2
