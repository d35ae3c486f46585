"""Bulk profile assignment (contract §7.6): accepted at once with every number pending, applied by
the `numbers.bulk_update` job, on the SDK's path and the seed document's path."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import telnyx
from telnyx import Telnyx

from tests.conftest import Account, unique_number
from tests.integration.test_numbers import create_profile, error_of, order
from tests.support.server import RunningServer
from tests.support.wait import wait_until

PATHS = ("/messaging_numbers_bulk_updates", "/messaging_numbers/bulk_updates")


@pytest.fixture
def raw(server: RunningServer, account: Account) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=f"{server.base_url}/v2", headers={"Authorization": f"Bearer {account.api_key}"}
    ) as c:
        yield c


def finished(client: Telnyx, order_id: str) -> Any:
    def done() -> Any:
        data = client.messaging_numbers_bulk_updates.retrieve(order_id).data
        assert data is not None
        return data if not data.pending else None

    return wait_until(done)


def profile_of(client: Telnyx, number: str) -> str | None:
    data = client.phone_numbers.messaging.retrieve(number).data
    assert data is not None
    return data.messaging_profile_id


def test_bulk_update_assigns_owned_numbers_and_fails_the_rest(
    client: Telnyx, other_account: Account
) -> None:
    profile_id = create_profile(client)
    mine = [unique_number(), unique_number()]
    order(client, *mine)
    theirs = unique_number()
    order(other_account.client, theirs)
    unknown = unique_number()
    numbers = [*mine, theirs, "not-a-number", unknown, mine[0]]

    accepted = client.messaging_numbers_bulk_updates.create(
        messaging_profile_id=profile_id, numbers=numbers
    ).data
    assert accepted is not None and accepted.order_id
    assert accepted.record_type == "messaging_numbers_bulk_update"
    assert accepted.pending == [*mine, theirs, "not-a-number", unknown]  # duplicates dropped
    assert accepted.success == [] and accepted.failed == []

    done = finished(client, accepted.order_id)
    assert done.order_id == accepted.order_id
    assert done.success == mine
    assert done.failed == [theirs, "not-a-number", unknown]
    for number in mine:
        assert profile_of(client, number) == profile_id
    assert profile_of(other_account.client, theirs) is None


def test_empty_profile_id_unassigns(client: Telnyx) -> None:
    profile_id = create_profile(client)
    numbers = [unique_number(), unique_number()]
    order(client, *numbers, messaging_profile_id=profile_id)
    accepted = client.messaging_numbers_bulk_updates.create(
        messaging_profile_id="", numbers=numbers
    )
    assert accepted.data is not None and accepted.data.order_id
    done = finished(client, accepted.data.order_id)
    assert done.success == numbers and done.failed == []
    assert [profile_of(client, n) for n in numbers] == [None, None]


def test_assign_only_leaves_other_settings(client: Telnyx) -> None:
    profile_a, profile_b = create_profile(client), create_profile(client)
    number = unique_number()
    order(client, number)
    client.phone_numbers.messaging.update(number, messaging_product="A2P", tags=["keep"])

    accepted = client.messaging_numbers_bulk_updates.create(
        messaging_profile_id=profile_a, numbers=[number], assign_only=True
    ).data
    assert accepted is not None and accepted.order_id
    assert finished(client, accepted.order_id).success == [number]
    got = client.phone_numbers.messaging.retrieve(number).data
    assert got is not None
    assert (got.messaging_profile_id, got.messaging_product, got.tags) == (
        profile_a,
        "A2P",
        ["keep"],
    )

    # Without assign_only the number is configured afresh: default product, tags kept.
    accepted = client.messaging_numbers_bulk_updates.create(
        messaging_profile_id=profile_b, numbers=[number]
    ).data
    assert accepted is not None and accepted.order_id
    assert finished(client, accepted.order_id).success == [number]
    got = client.phone_numbers.messaging.retrieve(number).data
    assert got is not None
    assert (got.messaging_profile_id, got.messaging_product, got.tags) == (
        profile_b,
        "P2P",
        ["keep"],
    )


@pytest.mark.parametrize("create_path", PATHS)
def test_both_paths_create_and_report(client: Telnyx, raw: httpx.Client, create_path: str) -> None:
    profile_id = create_profile(client)
    number = unique_number()
    order(client, number)
    r = raw.post(create_path, json={"messaging_profile_id": profile_id, "numbers": [number]})
    assert r.status_code == 200, r.text
    body = r.json()["data"]
    assert body["pending"] == [number] and body["success"] == [] and body["failed"] == []
    order_id = body["order_id"]

    def report(path: str) -> dict[str, Any] | None:
        got = raw.get(f"{path}/{order_id}")
        assert got.status_code == 200, got.text
        data: dict[str, Any] = got.json()["data"]
        return data if not data["pending"] else None

    for path in PATHS:
        data = wait_until(lambda p=path: report(p))
        assert data == {
            "record_type": "messaging_numbers_bulk_update",
            "order_id": order_id,
            "success": [number],
            "pending": [],
            "failed": [],
        }
    assert profile_of(client, number) == profile_id


def test_a_deleted_profile_fails_every_number(client: Telnyx, server: RunningServer) -> None:
    """A profile deleted after acceptance: the job finds it gone and fails the numbers."""
    from signalpost.context import AppContext
    from signalpost.numbers import service
    from signalpost.numbers.schemas import BulkUpdateCreate

    profile_id = create_profile(client)
    number = unique_number()
    order(client, number)
    me = client.messaging_profiles.retrieve(profile_id).data
    assert me is not None and me.organization_id

    async def accept_then_delete(ctx: AppContext) -> str:
        # Accept and delete the profile in one unit of work, before any worker can run the job.
        from sqlalchemy import delete

        from signalpost.models import messaging_profiles

        async with ctx.db.transaction() as uow:
            body = BulkUpdateCreate(messaging_profile_id=profile_id, numbers=[number])
            row = await service.create_bulk_update(uow, me.organization_id or "", body)
            await uow.conn.execute(
                delete(messaging_profiles).where(messaging_profiles.c.id == profile_id)
            )
            return str(row["order_id"])

    order_id = server.run(accept_then_delete)
    done = finished(client, order_id)
    assert done.success == [] and done.failed == [number]


def test_other_organizations_cannot_see_or_use(
    client: Telnyx, raw: httpx.Client, other_account: Account
) -> None:
    number = unique_number()
    order(client, number)
    accepted = client.messaging_numbers_bulk_updates.create(
        messaging_profile_id="", numbers=[number]
    ).data
    assert accepted is not None and accepted.order_id
    with pytest.raises(telnyx.NotFoundError) as exc:
        other_account.client.messaging_numbers_bulk_updates.retrieve(accepted.order_id)
    assert error_of(exc.value)["code"] == "10005"
    for path in PATHS:
        assert raw.get(f"{path}/{uuid.uuid4()}").status_code == 404

    foreign = create_profile(other_account.client)
    with pytest.raises(telnyx.UnprocessableEntityError) as exc2:
        client.messaging_numbers_bulk_updates.create(messaging_profile_id=foreign, numbers=[number])
    err = error_of(exc2.value)
    assert (err["code"], err["source"]["pointer"]) == ("10017", "/messaging_profile_id")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("body", "code", "pointer"),
    [
        ({"numbers": ["+13125550100"]}, "10004", "/messaging_profile_id"),
        ({"messaging_profile_id": ""}, "10004", "/numbers"),
        ({"messaging_profile_id": "", "numbers": []}, "10015", "/numbers"),
        ({"messaging_profile_id": "", "numbers": "+13125550100"}, "10015", "/numbers"),
        ({"messaging_profile_id": "", "numbers": [13125550100]}, "10015", "/numbers/0"),
        (
            {"messaging_profile_id": None, "numbers": ["+13125550100"]},
            "10015",
            "/messaging_profile_id",
        ),
        (
            {"messaging_profile_id": "", "numbers": ["+13125550100"], "assign_only": "yes"},
            "10015",
            "/assign_only",
        ),
        (
            {"messaging_profile_id": str(uuid.UUID(int=7)), "numbers": ["+13125550100"]},
            "10017",
            "/messaging_profile_id",
        ),
    ],
)
def test_bad_bodies(
    raw: httpx.Client, path: str, body: dict[str, Any], code: str, pointer: str
) -> None:
    r = raw.post(path, json=body)
    assert r.status_code == 422, r.text
    err = r.json()["errors"][0]
    assert (err["code"], err["source"]["pointer"]) == (code, pointer)


def test_both_paths_are_in_the_openapi_document(server: RunningServer) -> None:
    spec = httpx.get(f"{server.base_url}/openapi.json").json()
    operation_ids = []
    for path in PATHS:
        operation_ids.append(spec["paths"][f"/v2{path}"]["post"]["operationId"])
        operation_ids.append(spec["paths"][f"/v2{path}/{{order_id}}"]["get"]["operationId"])
    assert len(set(operation_ids)) == 4
