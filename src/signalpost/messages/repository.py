"""SQL for messages, their senders and idempotency records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import RowMapping

from signalpost.kit.db import UnitOfWork
from signalpost.models import (
    alphanumeric_sender_ids,
    idempotency_keys,
    messages,
    messaging_profiles,
    organizations,
    phone_numbers,
    short_codes,
)

# The hot statements are built once, with bound parameters: building a statement and its cache key
# on every call costs several times what executing it does.
_OWNED_NUMBER = select(phone_numbers).where(
    phone_numbers.c.organization_id == bindparam("org_id"),
    phone_numbers.c.phone_number == bindparam("number"),
)
_OWNED_SHORT_CODE = select(short_codes).where(
    short_codes.c.organization_id == bindparam("org_id"),
    short_codes.c.short_code == bindparam("code"),
)
_PROFILE = select(messaging_profiles).where(
    messaging_profiles.c.organization_id == bindparam("org_id"),
    messaging_profiles.c.id == bindparam("profile_id"),
)
_PROFILE_BY_ID = select(messaging_profiles).where(
    messaging_profiles.c.id == bindparam("profile_id")
)
_GET = select(messages).where(messages.c.id == bindparam("message_id"))
_GET_OWNED = _GET.where(messages.c.organization_id == bindparam("org_id"))
_GET_FOR_UPDATE = _GET.with_for_update()
_UPDATE = update(messages).where(messages.c.id == bindparam("_message_id")).returning(*messages.c)
_UPDATE_IN_STATUS = (
    update(messages)
    .where(
        messages.c.id == bindparam("_message_id"),
        messages.c.to_status == bindparam("_only_status"),
    )
    .returning(*messages.c)
)

_BY_ID = (("_message_id", "id"),)
_BY_ID_IN_STATUS = (*_BY_ID, ("_only_status", "to_status"))
_PROFILES_BY_ID = select(messaging_profiles).where(
    messaging_profiles.c.id.in_(bindparam("profile_ids", expanding=True))
)


async def owned_phone_number(uow: UnitOfWork, org_id: str, number: str) -> RowMapping | None:
    result = await uow.conn.execute(_OWNED_NUMBER, {"org_id": org_id, "number": number})
    return result.mappings().first()


async def owned_short_code(uow: UnitOfWork, org_id: str, code: str) -> RowMapping | None:
    result = await uow.conn.execute(_OWNED_SHORT_CODE, {"org_id": org_id, "code": code})
    return result.mappings().first()


async def alphanumeric_sender(
    uow: UnitOfWork, org_id: str, profile_id: str, sender: str
) -> RowMapping | None:
    q = select(alphanumeric_sender_ids).where(
        alphanumeric_sender_ids.c.organization_id == org_id,
        alphanumeric_sender_ids.c.messaging_profile_id == profile_id,
        alphanumeric_sender_ids.c.alphanumeric_sender_id == sender,
    )
    return (await uow.conn.execute(q)).mappings().first()


async def profile(uow: UnitOfWork, org_id: str, profile_id: str) -> RowMapping | None:
    result = await uow.conn.execute(_PROFILE, {"org_id": org_id, "profile_id": profile_id})
    return result.mappings().first()


async def profile_by_id(uow: UnitOfWork, profile_id: str | None) -> RowMapping | None:
    if not profile_id:
        return None
    result = await uow.conn.execute(_PROFILE_BY_ID, {"profile_id": profile_id})
    return result.mappings().first()


async def insert_messages(
    uow: UnitOfWork, rows: list[dict[str, Any]], *, defer: bool = False
) -> None:
    """Insert now, or with `defer` when the unit of work ends (kit.db.UnitOfWork.defer_insert)."""
    if defer:
        uow.defer_insert(messages, rows)
    else:
        await uow.conn.insert_many(messages, rows)


async def get(uow: UnitOfWork, message_id: str, org_id: str | None = None) -> RowMapping | None:
    if org_id is None:
        result = await uow.conn.execute(_GET, {"message_id": message_id})
    else:
        result = await uow.conn.execute(_GET_OWNED, {"message_id": message_id, "org_id": org_id})
    return result.mappings().first()


async def get_for_update(uow: UnitOfWork, message_id: str) -> RowMapping | None:
    stmt = _GET_FOR_UPDATE if uow.conn.dialect.name == "postgresql" else _GET
    return (await uow.conn.execute(stmt, {"message_id": message_id})).mappings().first()


async def group(uow: UnitOfWork, org_id: str, group_id: str) -> list[RowMapping]:
    q = (
        select(messages)
        .where(messages.c.organization_id == org_id, messages.c.group_id == group_id)
        .order_by(messages.c.received_at, messages.c.id)
    )
    return list((await uow.conn.execute(q)).mappings().all())


async def update_message(
    uow: UnitOfWork, message_id: str, values: dict[str, Any], *, only_status: str | None = None
) -> RowMapping | None:
    """Update a message (optionally only while its status is `only_status`); the new row or None."""
    params: dict[str, Any] = {"_message_id": message_id, **values}
    stmt = _UPDATE
    if only_status is not None:
        stmt = _UPDATE_IN_STATUS
        params["_only_status"] = only_status
    return (await uow.conn.execute(stmt, params)).mappings().first()


async def signing_seed(uow: UnitOfWork, org_id: str) -> str | None:
    q = select(organizations.c.signing_seed).where(organizations.c.id == org_id)
    return (await uow.conn.execute(q)).scalar_one_or_none()


async def idempotency_record(uow: UnitOfWork, org_id: str, key: str) -> RowMapping | None:
    q = select(idempotency_keys).where(
        idempotency_keys.c.organization_id == org_id, idempotency_keys.c.key == key
    )
    return (await uow.conn.execute(q)).mappings().first()


async def save_idempotency(uow: UnitOfWork, row: dict[str, Any]) -> None:
    await uow.conn.execute(insert(idempotency_keys).values(**row))


async def purge_idempotency(uow: UnitOfWork, org_id: str, key: str, before: datetime) -> None:
    await uow.conn.execute(
        delete(idempotency_keys).where(
            idempotency_keys.c.organization_id == org_id,
            idempotency_keys.c.key == key,
            idempotency_keys.c.created_at < before,
        )
    )


async def get_many_for_update(
    uow: UnitOfWork, message_ids: Sequence[str]
) -> dict[str, Mapping[str, Any]]:
    """Several messages by id (missing ones left out), locked until the transaction ends."""
    if not message_ids:
        return {}
    # Locked in id order on PostgreSQL; on SQLite the transaction holds the single writer lock.
    rows = await uow.conn.rows_where_in(messages, "id", sorted(set(message_ids)), for_update=True)
    return {row["id"]: row for row in rows}


async def update_many(
    uow: UnitOfWork,
    changes: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    only_status: str | None = None,
) -> None:
    """Apply `(message_id, values)` changes with executemany (one statement per set of columns).

    For rows this transaction read with `get_many_for_update`, so each change is known to apply:
    with `only_status`, a row in another status is a bug, and the transaction is rolled back.
    """
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for message_id, values in changes:
        params = {"_message_id": message_id, **values}
        if only_status is not None:
            params["_only_status"] = only_status
        shapes.setdefault(tuple(sorted(params)), []).append(params)
    match = _BY_ID if only_status is None else _BY_ID_IN_STATUS
    for params_list in shapes.values():
        changed = await uow.conn.update_many(messages, match, params_list)
        if 0 <= changed != len(params_list):
            raise RuntimeError(f"{len(params_list) - changed} message(s) changed under a lock")


async def profiles_by_id(uow: UnitOfWork, profile_ids: Sequence[str]) -> dict[str, RowMapping]:
    if not profile_ids:
        return {}
    result = await uow.conn.execute(_PROFILES_BY_ID, {"profile_ids": sorted(set(profile_ids))})
    return {row["id"]: row for row in result.mappings()}
