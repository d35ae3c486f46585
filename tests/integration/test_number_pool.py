"""Number pool: sender choice by weights, sticky sender, geomatch, skipping unhealthy numbers."""

from __future__ import annotations

from collections import Counter

import pytest
import telnyx
from telnyx import Telnyx

from tests.conftest import unique_number
from tests.support.messaging import FINAL
from tests.support.receiver import WebhookReceiver
from tests.support.wait import wait_until


def _pool(client: Telnyx, receiver: WebhookReceiver, numbers: list[str], **settings: object) -> str:
    profile = client.messaging_profiles.create(
        name="pool",
        whitelisted_destinations=["US"],
        webhook_url=receiver.url("/pool"),
        number_pool_settings={
            "long_code_weight": 1,
            "toll_free_weight": 1,
            "skip_unhealthy": False,
            **settings,
        },
    ).data
    assert profile is not None and profile.id
    if numbers:
        client.number_orders.create(
            phone_numbers=[{"phone_number": n} for n in numbers], messaging_profile_id=profile.id
        )
    return profile.id


def _sender(client: Telnyx, profile_id: str, to: str) -> str:
    msg = client.messages.send_number_pool(messaging_profile_id=profile_id, to=to, text="pool").data
    assert msg is not None and msg.from_ and msg.from_.phone_number
    return msg.from_.phone_number


def test_weights_are_respected(client: Telnyx, receiver: WebhookReceiver) -> None:
    long_codes = [unique_number(), unique_number()]
    toll_free = [unique_number("844"), unique_number("877")]
    pid = _pool(client, receiver, long_codes + toll_free, long_code_weight=3, toll_free_weight=1)
    picks = Counter(_sender(client, pid, f"+1415555{i:04d}") for i in range(200))
    share_long = sum(picks[n] for n in long_codes) / 200
    # Expected 0.75; the bound is over 6 standard deviations for n=200.
    assert 0.55 < share_long < 0.95, picks
    assert set(picks) <= set(long_codes + toll_free)
    assert all(picks[n] > 0 for n in long_codes)


def test_zero_weight_type_is_never_used(client: Telnyx, receiver: WebhookReceiver) -> None:
    long_code, toll_free = unique_number(), unique_number("888")
    pid = _pool(client, receiver, [long_code, toll_free], long_code_weight=0, toll_free_weight=5)
    assert {_sender(client, pid, f"+1415556{i:04d}") for i in range(30)} == {toll_free}


def test_sticky_sender_keeps_the_pairing(client: Telnyx, receiver: WebhookReceiver) -> None:
    numbers = [unique_number() for _ in range(4)]
    pid = _pool(client, receiver, numbers, sticky_sender=True)
    for i in range(5):
        to = f"+1415557{i:04d}"
        first = _sender(client, pid, to)
        assert all(_sender(client, pid, to) == first for _ in range(8))


def test_sticky_pair_dropped_when_number_leaves_profile(
    client: Telnyx, receiver: WebhookReceiver
) -> None:
    numbers = [unique_number() for _ in range(2)]
    pid = _pool(client, receiver, numbers, sticky_sender=True)
    to = "+14155580000"
    first = _sender(client, pid, to)
    client.phone_numbers.messaging.update(first, messaging_profile_id="")
    other = next(n for n in numbers if n != first)
    assert _sender(client, pid, to) == other


def test_without_sticky_senders_vary(client: Telnyx, receiver: WebhookReceiver) -> None:
    numbers = [unique_number() for _ in range(4)]
    pid = _pool(client, receiver, numbers)
    assert len({_sender(client, pid, "+14155590000") for _ in range(40)}) > 1


def test_geomatch_prefers_the_destination_area_code(
    client: Telnyx, receiver: WebhookReceiver
) -> None:
    chicago, sf = unique_number("312"), unique_number("415")
    pid = _pool(client, receiver, [chicago, sf], geomatch=True)
    assert {_sender(client, pid, f"+1415560{i:04d}") for i in range(20)} == {sf}
    assert {_sender(client, pid, f"+1312561{i:04d}") for i in range(20)} == {chicago}
    # No number with the destination's area code: any number of the pool.
    assert {_sender(client, pid, f"+1646562{i:04d}") for i in range(30)} == {chicago, sf}


def test_skip_unhealthy_after_failures(client: Telnyx, receiver: WebhookReceiver) -> None:
    bad, good = unique_number(), unique_number()
    pid = _pool(client, receiver, [bad, good], skip_unhealthy=True)
    # Make `bad` unhealthy: ten messages it sends all fail delivery.
    failing = [
        client.messages.send(from_=bad, to="+13125550110", text=f"fail {i}").data for i in range(10)
    ]

    def all_final() -> bool:
        return all(
            (m := client.messages.retrieve(f.id or "").data) is not None
            and m.to is not None
            and m.to[0].status in FINAL
            for f in failing
            if f is not None
        )

    wait_until(all_final, 20)
    health = client.phone_numbers.messaging.retrieve(bad).data
    assert health is not None and health.health is not None
    assert health.health.success_ratio < 0.5
    assert {_sender(client, pid, f"+1415563{i:04d}") for i in range(20)} == {good}


def test_no_usable_number_is_40321(client: Telnyx, receiver: WebhookReceiver) -> None:
    pid = _pool(client, receiver, [])
    with pytest.raises(telnyx.BadRequestError) as info:
        client.messages.send_number_pool(messaging_profile_id=pid, to="+14155640000", text="x")
    body = info.value.body
    assert isinstance(body, dict) and body["errors"][0]["code"] == "40321"


def test_pool_disabled_is_a_clear_error(client: Telnyx, receiver: WebhookReceiver) -> None:
    profile = client.messaging_profiles.create(name="no pool", whitelisted_destinations=["US"]).data
    assert profile is not None and profile.id
    client.number_orders.create(
        phone_numbers=[{"phone_number": unique_number()}], messaging_profile_id=profile.id
    )
    with pytest.raises(telnyx.BadRequestError) as info:
        client.messages.send(messaging_profile_id=profile.id, to="+14155650000", text="x")
    body = info.value.body
    assert isinstance(body, dict)
    assert body["errors"][0]["code"] == "40321"
    assert "number_pool_settings" in body["errors"][0]["detail"]
