"""SQL the carriers need: who owns a number (on-net routing) and server-wide simulator state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import RowMapping

from signalpost.kit.clock import utcnow
from signalpost.kit.db import UnitOfWork
from signalpost.models import phone_numbers, server_state

_NUMBER_OWNER = select(phone_numbers).where(phone_numbers.c.phone_number == bindparam("e164"))
_NUMBER_OWNERS = select(phone_numbers.c.phone_number, phone_numbers.c.mobile).where(
    phone_numbers.c.phone_number.in_(bindparam("numbers", expanding=True))
)


async def number_owner(uow: UnitOfWork, e164: str) -> RowMapping | None:
    return (await uow.conn.execute(_NUMBER_OWNER, {"e164": e164})).mappings().first()


async def number_owners(uow: UnitOfWork, numbers: Sequence[str]) -> dict[str, RowMapping]:
    """The owned numbers among `numbers` (with `mobile`), by number."""
    if not numbers:
        return {}
    result = await uow.conn.execute(_NUMBER_OWNERS, {"numbers": sorted(set(numbers))})
    return {row["phone_number"]: row for row in result.mappings()}


async def get_state(uow: UnitOfWork, key: str) -> Any:
    q = select(server_state.c.value).where(server_state.c.key == key)
    return (await uow.conn.execute(q)).scalar_one_or_none()


async def get_states(uow: UnitOfWork, keys: Sequence[str]) -> dict[str, Any]:
    """The values stored under `keys` (missing keys left out)."""
    q = select(server_state.c.key, server_state.c.value).where(server_state.c.key.in_(keys))
    return {row.key: row.value for row in await uow.conn.execute(q)}


async def set_state(uow: UnitOfWork, key: str, value: Any) -> None:
    now = utcnow()
    res = await uow.conn.execute(
        update(server_state).where(server_state.c.key == key).values(value=value, updated_at=now)
    )
    if res.rowcount == 0:
        await uow.conn.execute(insert(server_state).values(key=key, value=value, updated_at=now))
