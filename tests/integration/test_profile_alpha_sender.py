"""A messaging profile's `alpha_sender` can be sent from at once, without registering it through
`POST /alphanumeric_sender_ids`; registering still works too."""

from __future__ import annotations

import pytest
import telnyx
from telnyx import Telnyx

from tests.support.messaging import Sender, wait_final


def _code(exc: telnyx.APIStatusError) -> str:
    body = exc.body
    assert isinstance(body, dict)
    return str(body["errors"][0]["code"])


def test_profile_alpha_sender_sends_without_registration(client: Telnyx, sender: Sender) -> None:
    client.messaging_profiles.update(sender.profile_id, alpha_sender="Shop")
    msg = client.messages.send_with_alphanumeric_sender(
        from_="Shop", messaging_profile_id=sender.profile_id, to="+447700900124", text="hi"
    ).data
    assert msg is not None and msg.id and msg.from_ and msg.from_.phone_number == "Shop"
    assert wait_final(client, msg.id).to[0].status == "delivered"
    # The general endpoint too, with the profile named.
    again = client.messages.send(
        from_="Shop", messaging_profile_id=sender.profile_id, to="+447700900125", text="hi"
    ).data
    assert again is not None and again.from_ and again.from_.phone_number == "Shop"
    # Another name is still refused, and so is the old one once the profile drops it.
    with pytest.raises(telnyx.BadRequestError) as info:
        client.messages.send_with_alphanumeric_sender(
            from_="Other", messaging_profile_id=sender.profile_id, to="+447700900124", text="x"
        )
    assert _code(info.value) == "40306"
    client.messaging_profiles.update(sender.profile_id, alpha_sender=None)
    with pytest.raises(telnyx.BadRequestError) as info:
        client.messages.send_with_alphanumeric_sender(
            from_="Shop", messaging_profile_id=sender.profile_id, to="+447700900124", text="x"
        )
    assert _code(info.value) == "40306"


def test_registered_and_profile_alpha_senders_both_work(client: Telnyx, sender: Sender) -> None:
    client.messaging_profiles.update(sender.profile_id, alpha_sender="Brand")
    client.alphanumeric_sender_ids.create(
        alphanumeric_sender_id="Helpdesk", messaging_profile_id=sender.profile_id
    )
    for name in ("Brand", "Helpdesk"):
        m = client.messages.send_with_alphanumeric_sender(
            from_=name, messaging_profile_id=sender.profile_id, to="+447700900126", text="x"
        ).data
        assert m is not None and m.from_ and m.from_.phone_number == name


def test_another_profiles_alpha_sender_is_not_usable(client: Telnyx, sender: Sender) -> None:
    other = client.messaging_profiles.create(
        name="other brand", whitelisted_destinations=["GB"], alpha_sender="Elsewhere"
    ).data
    assert other is not None
    with pytest.raises(telnyx.BadRequestError) as info:
        client.messages.send_with_alphanumeric_sender(
            from_="Elsewhere", messaging_profile_id=sender.profile_id, to="+447700900127", text="x"
        )
    assert _code(info.value) == "40306"
