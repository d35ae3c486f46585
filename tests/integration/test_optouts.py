"""`GET /v2/messaging_optouts` through the SDK, blocks on every send path, and the operator CLI."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import telnyx
from telnyx import Telnyx
from typer.testing import CliRunner

from signalpost.cli import app as cli_app
from signalpost.context import AppContext
from signalpost.optouts import repository as optouts_repo
from tests.conftest import Account, unique_number
from tests.support.messaging import Sender, make_sender
from tests.support.receiver import WebhookReceiver
from tests.support.server import RunningServer
from tests.support.wait import wait_until

_handsets = iter(range(5000, 10_000))


def handset() -> str:
    return f"+1773555{next(_handsets):04d}"


def stop(server: RunningServer, account: Account, from_: str, to: str, text: str = "STOP") -> None:
    r = httpx.post(
        f"{server.base_url}/simulator/inbound",
        json={"from": from_, "to": to, "text": text},
        headers={"Authorization": f"Bearer {account.api_key}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["autoresponse_type"] in ("STOP", "START")


def seed(
    server: RunningServer, account: Account, sender: Sender, phone: str, created_at: datetime
) -> None:
    """An opt-out with a chosen creation time (the API only ever creates them 'now')."""

    async def go(ctx: AppContext) -> None:
        async with ctx.db.transaction() as uow:
            await optouts_repo.insert_if_absent(
                uow,
                {
                    "id": str(uuid.uuid4()),
                    "organization_id": account.org.id,
                    "messaging_profile_id": sender.profile_id,
                    "from_number": phone,
                    "to_number": sender.number,
                    "keyword": "STOP",
                    "created_at": created_at,
                },
            )

    server.run(go)


def raw_list(server: RunningServer, account: Account, **params: str) -> httpx.Response:
    return httpx.get(
        f"{server.base_url}/v2/messaging_optouts",
        params=params,
        headers={"Authorization": f"Bearer {account.api_key}"},
        timeout=10,
    )


# --- listing ------------------------------------------------------------------------------------


def test_list_shape_and_filters(
    server: RunningServer,
    account: Account,
    client: Telnyx,
    sender: Sender,
    receiver: WebhookReceiver,
) -> None:
    other = make_sender(client, receiver, unique_number())
    second = unique_number()
    client.number_orders.create(
        phone_numbers=[{"phone_number": second}], messaging_profile_id=sender.profile_id
    )
    a, b, c = handset(), handset(), handset()
    stop(server, account, a, sender.number)
    stop(server, account, b, second, "unsubscribe")
    stop(server, account, c, other.number)

    everything = list(client.messaging_optouts.list())
    assert {(o.from_, o.to) for o in everything} == {
        (sender.number, a),
        (second, b),
        (other.number, c),
    }
    first = next(o for o in everything if o.to == b)
    assert first.keyword == "UNSUBSCRIBE"
    assert first.messaging_profile_id == sender.profile_id
    assert first.created_at is not None and abs(first.created_at - datetime.now(UTC)) < timedelta(
        minutes=1
    )

    by_profile = client.messaging_optouts.list(filter={"messaging_profile_id": sender.profile_id})
    assert {o.to for o in by_profile} == {a, b}
    by_from = client.messaging_optouts.list(filter={"from": second})
    assert [o.to for o in by_from] == [b]
    both = client.messaging_optouts.list(
        filter={"messaging_profile_id": other.profile_id, "from": second}
    )
    assert list(both) == []
    # A '+' sent unencoded (a space once decoded) still matches.
    r = httpx.get(
        f"{server.base_url}/v2/messaging_optouts?filter[from]={second}",
        headers={"Authorization": f"Bearer {account.api_key}"},
    )
    assert [o["to"] for o in r.json()["data"]] == [b]


def test_date_window(
    server: RunningServer, account: Account, client: Telnyx, sender: Sender
) -> None:
    jan, jun, dec = (datetime(2024, m, 1, 12, tzinfo=UTC) for m in (1, 6, 12))
    old, mid, new = handset(), handset(), handset()
    seed(server, account, sender, old, jan)
    seed(server, account, sender, mid, jun)
    seed(server, account, sender, new, dec)

    def window(**created_at: Any) -> list[str]:
        return [o.to or "" for o in client.messaging_optouts.list(created_at=created_at)]

    assert window(gte=jun) == [new, mid]  # newest first
    assert window(lte=jun) == [mid, old]
    assert window(gte=jan + timedelta(seconds=1), lte=dec - timedelta(seconds=1)) == [mid]
    assert window(gte="2024-06-01T12:00:00Z", lte="2024-06-01T12:00:00Z") == [mid]
    assert window(gte=dec + timedelta(days=1)) == []
    [item] = list(client.messaging_optouts.list(created_at={"gte": jun, "lte": jun}))
    assert item.created_at == jun

    r = raw_list(server, account, **{"created_at[gte]": "yesterday"})
    assert r.status_code == 400
    assert r.json()["errors"][0]["source"] == {"parameter": "created_at[gte]"}
    with pytest.raises(telnyx.BadRequestError):
        client.messaging_optouts.list(created_at={"lte": "not a date"})


def test_pagination(
    server: RunningServer, account: Account, client: Telnyx, sender: Sender
) -> None:
    start = datetime(2025, 3, 1, tzinfo=UTC)
    phones = [handset() for _ in range(5)]
    for i, phone in enumerate(phones):
        seed(server, account, sender, phone, start + timedelta(hours=i))

    page = client.messaging_optouts.list(page_size=2)
    assert [o.to for o in page.data] == phones[::-1][:2]
    assert page.meta is not None and (page.meta.page_number, page.meta.total_pages) == (1, 3)
    assert [o.to for o in page] == phones[::-1]  # the SDK follows pages 2 and 3

    third = raw_list(server, account, **{"page[number]": "3", "page[size]": "2"}).json()
    assert third["meta"] == {"page_number": 3, "page_size": 2, "total_pages": 3, "total_results": 5}
    assert [o["to"] for o in third["data"]] == [phones[0]]
    beyond = raw_list(server, account, **{"page[number]": "4", "page[size]": "2"}).json()
    assert beyond["data"] == [] and beyond["meta"]["total_results"] == 5
    assert raw_list(server, account, **{"page[size]": "251"}).status_code == 400


def test_redaction_masks_the_handset(
    server: RunningServer, account: Account, client: Telnyx, sender: Sender
) -> None:
    phone = handset()
    stop(server, account, phone, sender.number)
    [masked] = list(client.messaging_optouts.list(redaction_enabled="true"))
    assert masked.to == phone[:-4] + "****"
    assert masked.from_ == sender.number
    [clear] = list(client.messaging_optouts.list(redaction_enabled="false"))
    assert clear.to == phone
    with pytest.raises(telnyx.BadRequestError):
        client.messaging_optouts.list(redaction_enabled="maybe")


def test_organizations_see_only_their_own(
    server: RunningServer, account: Account, other_account: Account, sender: Sender
) -> None:
    stop(server, account, handset(), sender.number)
    assert len(list(account.client.messaging_optouts.list())) == 1
    assert list(other_account.client.messaging_optouts.list()) == []
    assert (
        list(
            other_account.client.messaging_optouts.list(
                filter={"messaging_profile_id": sender.profile_id}
            )
        )
        == []
    )
    r = httpx.get(f"{server.base_url}/v2/messaging_optouts")
    assert r.status_code == 401


# --- every send path refuses a blocked pair -----------------------------------------------------


def test_scheduled_message_fails_when_it_fires_after_a_stop(
    server: RunningServer,
    account: Account,
    client: Telnyx,
    sender: Sender,
    receiver: WebhookReceiver,
) -> None:
    phone = handset()
    send_at = datetime.now(UTC) + timedelta(seconds=2)
    scheduled = client.messages.schedule(
        from_=sender.number, to=phone, text="Reminder", send_at=send_at
    ).data
    assert scheduled is not None and scheduled.id
    stop(server, account, phone, sender.number)

    def finalized() -> dict[str, Any] | None:
        for r in receiver.on(sender.hook_path):
            data = r.json()["data"]
            if (
                data.get("event_type") == "message.finalized"
                and data["payload"]["id"] == scheduled.id
            ):
                return dict(data["payload"])
        return None

    payload = wait_until(finalized, 15)
    assert payload["to"][0]["status"] == "sending_failed"
    assert [e["code"] for e in payload["errors"]] == ["40300"]
    msg = client.messages.retrieve(scheduled.id).data
    assert msg is not None and msg.to and msg.to[0].status == "sending_failed"
    assert msg.errors and msg.errors[0].code == "40300"


def test_number_pool_and_long_code_refuse_a_blocked_recipient(
    server: RunningServer, account: Account, client: Telnyx, receiver: WebhookReceiver
) -> None:
    pooled = make_sender(
        client,
        receiver,
        unique_number(),
        number_pool_settings={
            "long_code_weight": 1,
            "toll_free_weight": 0,
            "skip_unhealthy": False,
        },
    )
    phone = handset()
    stop(server, account, phone, pooled.number)
    with pytest.raises(telnyx.ConflictError) as caught:
        client.messages.send_number_pool(
            messaging_profile_id=pooled.profile_id, to=phone, text="pool"
        )
    assert caught.value.body["errors"][0]["code"] == "40300"  # type: ignore[index]
    with pytest.raises(telnyx.ConflictError):
        client.messages.send_long_code(from_=pooled.number, to=phone, text="long code")
    assert (
        client.messages.send_number_pool(
            messaging_profile_id=pooled.profile_id, to=handset(), text="pool"
        ).data
        is not None
    )


def test_group_mms_refuses_a_blocked_recipient(
    server: RunningServer, account: Account, client: Telnyx, sender: Sender
) -> None:
    phone, fine = handset(), handset()
    stop(server, account, phone, sender.number)
    with pytest.raises(telnyx.ConflictError) as caught:
        client.messages.send_group_mms(from_=sender.number, to=[fine, phone], text="group")
    assert caught.value.body["errors"][0]["code"] == "40300"  # type: ignore[index]
    sent = client.messages.send_group_mms(from_=sender.number, to=[fine, handset()], text="group")
    assert sent.data is not None


# --- operator CLI -------------------------------------------------------------------------------


def test_cli_add_list_remove(server: RunningServer, client: Telnyx, sender: Sender) -> None:
    runner = CliRunner()
    db = ["--database-url", server.settings.database_url]
    phone = handset()

    added = runner.invoke(
        cli_app,
        [
            "optouts",
            "add",
            "--profile",
            sender.profile_id,
            "--handset",
            phone,
            "--number",
            sender.number,
            *db,
        ],
    )
    assert added.exit_code == 0, added.output
    [listed] = list(client.messaging_optouts.list())
    assert (listed.from_, listed.to, listed.keyword) == (sender.number, phone, "STOP")
    with pytest.raises(telnyx.ConflictError):
        client.messages.send(from_=sender.number, to=phone, text="hi")

    shown = runner.invoke(cli_app, ["optouts", "list", "--profile", sender.profile_id, *db])
    assert shown.exit_code == 0, shown.output
    assert phone in shown.output and sender.number in shown.output

    removed = runner.invoke(
        cli_app, ["optouts", "remove", "--profile", sender.profile_id, "--handset", phone, *db]
    )
    assert removed.exit_code == 0, removed.output
    assert list(client.messaging_optouts.list()) == []
    assert client.messages.send(from_=sender.number, to=phone, text="hi").data is not None

    again = runner.invoke(
        cli_app, ["optouts", "remove", "--profile", sender.profile_id, "--handset", phone, *db]
    )
    assert again.exit_code == 1
    bad = runner.invoke(
        cli_app,
        [
            "optouts",
            "add",
            "--profile",
            str(uuid.uuid4()),
            "--handset",
            phone,
            "--number",
            sender.number,
            *db,
        ],
    )
    assert bad.exit_code == 1


@pytest.mark.parametrize("count", [3, optouts_repo.SMALL_LIST + 5])
def test_blocks_hold_for_short_and_long_opt_out_lists(
    server: RunningServer, account: Account, client: Telnyx, sender: Sender, count: int
) -> None:
    """A short list is read once per transaction as a set, a long one asked per handset: same answer."""
    now = datetime.now(UTC)
    blocked = [f"+1646555{i:04d}" for i in range(count)]
    for phone in blocked:
        seed(server, account, sender, phone, now)
    for phone in (blocked[0], blocked[-1]):
        with pytest.raises(telnyx.ConflictError) as caught:
            client.messages.send(from_=sender.number, to=phone, text="blocked")
        assert caught.value.body["errors"][0]["code"] == "40300"  # type: ignore[index]
    sent = client.messages.send(from_=sender.number, to="+16465559999", text="allowed").data
    assert sent is not None and sent.to is not None and sent.to[0].status == "queued"
