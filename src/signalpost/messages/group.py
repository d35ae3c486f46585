"""Group MMS: `POST /v2/messages/group_mms` and `GET /v2/messages/group/{message_id}` (§5.7, §5.8).

Shape (contract Open point 3, decided from the SDK types). The send response is one
`OutboundMessagePayload` and the group lookup a list of them, and `to[].status` is the only
per-recipient status the outbound object has; so a group MMS is stored as one message per
recipient, and every one of them reads the same way:

- `to` is that message's one recipient, with its own status, lifecycle and webhooks
  (`message.sent`, `message.finalized` per recipient);
- `cc` lists the other recipients of the group (`phone_number`, `carrier`, `line_type`; no status:
  each has its own message for that) — who else is in the conversation, as on the inbound side;
- `group_message_id` (an extra key) is the group's id, which is the id of the first recipient's
  message. The send response is that first message, so `data.id` is both a retrievable message id
  and the id `GET /messages/group/{id}` takes; that lookup also accepts the id of any member message
  and answers the group's messages in the order of `to`.

An on-net recipient (a number owned by an organization on this server) receives the message as an
inbound MMS whose `to` is its number and whose `cc` lists the other recipients; the sender is
`from`. Group messages are always MMS, with or without media.

Rules: `from` is one of the organization's long codes or toll-free numbers; `to` holds 1–8
distinct US or Canadian +E.164 numbers other than `from` (else 40310 with a pointer to the item,
or 10015 at `/to` for the count); `text` or `media_urls` as for any MMS (40316, 40317).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import RowMapping

from signalpost.accounts.service import Organization
from signalpost.context import AppContext
from signalpost.kit import phone
from signalpost.kit.db import UnitOfWork
from signalpost.kit.errors import invalid, not_found
from signalpost.messages import repository as repo
from signalpost.messages import service
from signalpost.messages.errors import invalid_to
from signalpost.messages.schemas import GroupMmsSend
from signalpost.messages.senders import SendRequest

MAX_RECIPIENTS = 8
COUNTRIES = frozenset({"US", "CA"})


def recipients(to: list[str], sender: str) -> list[str]:
    """The checked, stripped recipients of a group MMS."""
    if not to:
        raise invalid("/to", "A group MMS needs at least one recipient.")
    if len(to) > MAX_RECIPIENTS:
        raise invalid("/to", f"A group MMS has at most {MAX_RECIPIENTS} recipients.")
    out: list[str] = []
    for i, raw in enumerate(to):
        number = raw.strip(" ")
        info = phone.parse(number)
        if info is None:
            raise invalid_to(f"'{number}' is not a valid +E.164 phone number.", f"/to/{i}")
        if info.country_code not in COUNTRIES:
            raise invalid_to(
                f"{number} is not a US or Canadian number; group MMS reaches only those.",
                f"/to/{i}",
            )
        if number in out:
            raise invalid_to(f"{number} appears more than once.", f"/to/{i}")
        if number == sender:
            raise invalid_to(f"{number} is the sender.", f"/to/{i}")
        out.append(number)
    return out


def _participant(number: str) -> dict[str, Any]:
    info = phone.parse(number)
    return {
        "phone_number": number,
        "carrier": (info.carrier if info else "") or "",
        "line_type": (info.line_type if info else "") or "",
    }


async def send(
    ctx: AppContext,
    uow: UnitOfWork,
    org: Organization,
    body: GroupMmsSend,
    *,
    link_problems: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Accept a group MMS: one queued message per recipient; the first one's id is the group's.

    `link_problems`: the outbound guard's verdicts on the text's links (messages.outbound).
    """
    sender = body.from_.strip(" ")
    to = recipients(body.to, sender)
    request = body.model_dump(by_alias=True, exclude_unset=True)
    reqs = [
        SendRequest(
            endpoint="long_code",
            to=number,
            from_=sender,
            text=body.text,
            subject=body.subject,
            media_urls=list(body.media_urls or []),
            type="MMS",
            use_profile_webhooks=body.use_profile_webhooks,
            webhook_url=body.webhook_url,
            webhook_failover_url=body.webhook_failover_url,
            cc=[_participant(other) for other in to if other != number],
            request=request,
            link_problems=link_problems,
        )
        for number in to
    ]
    rows = await service.send_many(ctx, uow, org, reqs)
    group_id = rows[0]["id"]
    for row in rows:
        await repo.update_message(uow, row["id"], {"group_id": group_id})
    return [{**row, "group_id": group_id} for row in rows]


async def retrieve(uow: UnitOfWork, org: Organization, message_id: str) -> list[RowMapping]:
    """The messages of a group, by the group's id or the id of any of its messages (404 else)."""
    rows = await repo.group(uow, org.id, message_id)
    if not rows:
        member = await repo.get(uow, message_id, org.id)
        if member is not None and member["group_id"] and member["direction"] == "outbound":
            rows = await repo.group(uow, org.id, member["group_id"])
    rows = [r for r in rows if r["direction"] == "outbound"]
    if not rows:
        raise not_found("Message group", f"Group message {message_id} not found.")
    return _in_to_order(rows)


def _in_to_order(rows: list[RowMapping]) -> list[RowMapping]:
    """The first message's recipient, then its `cc` (the others, in the order of `to`)."""
    first = next((r for r in rows if r["id"] == r["group_id"]), rows[0])
    order = [first["to_number"], *(c.get("phone_number") for c in first["cc"] or [])]
    rank = {number: i for i, number in enumerate(order)}
    return sorted(rows, key=lambda r: (rank.get(r["to_number"], len(order)), r["id"]))
