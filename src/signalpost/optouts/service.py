"""Opt-outs: a handset that wrote an opt-out keyword to a number is blocked for that number's
whole messaging profile until it writes an opt-in keyword (or an operator removes the block).

A block is the pair (handset, messaging profile). Every send path asks `is_blocked` with the
sender's profile and the destination; auto-replies confirming an opt-out are sent anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.engine import RowMapping

from signalpost.kit import ids, phone
from signalpost.kit.clock import utcnow
from signalpost.kit.db import UnitOfWork
from signalpost.kit.errors import ApiError, invalid, not_found
from signalpost.optouts import repository as repo
from signalpost.optouts.keywords import AutoResponseConfig, KeywordMatch, match
from signalpost.optouts.repository import OptoutQuery

log = logging.getLogger("signalpost.optouts")

BLOCKED_CODE = "40300"
BLOCKED_TITLE = "Blocked due to STOP message"


async def is_blocked(uow: UnitOfWork, profile_id: str | None, to: str) -> bool:
    """Whether the handset `to` opted out of messages from the messaging profile `profile_id`."""
    if not profile_id:
        return False
    return await repo.is_blocked(uow, profile_id, to.strip())


async def blocked_code(uow: UnitOfWork, profile_id: str | None, to: str) -> str | None:
    """`"40300"` when the pair is blocked (for messages checked again when they fire), else None."""
    return BLOCKED_CODE if await is_blocked(uow, profile_id, to) else None


async def opt_out(
    uow: UnitOfWork,
    *,
    organization_id: str,
    profile_id: str,
    handset: str,
    number: str,
    keyword: str | None,
) -> bool:
    """Block `handset` for the profile (it wrote `keyword` to `number`); False if already blocked."""
    added = await repo.insert_if_absent(
        uow,
        {
            "id": ids.new_uuid(),
            "organization_id": organization_id,
            "messaging_profile_id": profile_id,
            "from_number": handset,
            "to_number": number,
            "keyword": keyword,
            "created_at": utcnow(),
        },
    )
    if added:
        log.info(
            "opt-out: %s is blocked for messaging profile %s (%s to %s)",
            handset,
            profile_id,
            keyword or "by hand",
            number,
            extra={"handset": handset, "messaging_profile_id": profile_id, "keyword": keyword},
        )
    return added


async def opt_in(uow: UnitOfWork, profile_id: str, handset: str) -> bool:
    """Remove the block of `handset` for the profile; False if there was none."""
    removed = await repo.delete_pair(uow, profile_id, handset) > 0
    if removed:
        log.info(
            "opt-in: %s is no longer blocked for messaging profile %s",
            handset,
            profile_id,
            extra={"handset": handset, "messaging_profile_id": profile_id},
        )
    return removed


async def list_optouts(
    uow: UnitOfWork, org_id: str | None, query: OptoutQuery, *, offset: int, limit: int
) -> tuple[list[RowMapping], int]:
    return await repo.list_optouts(uow, org_id, query, offset, limit)


async def keyword_for(
    uow: UnitOfWork, profile_id: str | None, handset: str, text: str | None
) -> KeywordMatch | None:
    """The keyword operation an inbound `text` from `handset` asks of the profile, if any."""
    if not text:
        return None
    configs: Sequence[AutoResponseConfig] = ()
    if profile_id:
        configs = [
            AutoResponseConfig(
                op=row["op"],
                keywords=tuple(str(k) for k in row["keywords"] or []),
                country_code=row["country_code"],
                resp_text=row["resp_text"],
            )
            for row in await repo.autoresp_configs_of(uow, profile_id)
            if row["op"] in ("stop", "start", "info")
        ]
    return match(text, phone.country_of(handset), configs)


# --- operator tools (CLI) -----------------------------------------------------------------------


async def add_block(
    uow: UnitOfWork, *, profile_id: str, handset: str, number: str, keyword: str | None
) -> RowMapping:
    """Record an opt-out by hand (imports, support cases). Returns the (possibly existing) block."""
    profile = await repo.profile(uow, profile_id)
    if profile is None:
        raise not_found("Messaging profile", f"Messaging profile {profile_id} not found.")
    if not phone.is_e164(handset):
        raise invalid("/handset", f"'{handset}' is not a +E.164 phone number.")
    if not (phone.is_e164(number) or phone.SHORT_CODE.match(number)):
        raise invalid("/number", f"'{number}' is not a +E.164 phone number or short code.")
    await opt_out(
        uow,
        organization_id=profile["organization_id"],
        profile_id=profile_id,
        handset=handset,
        number=number,
        keyword=keyword,
    )
    row = await repo.get(uow, profile_id, handset)
    if row is None:  # pragma: no cover - inserted just above
        raise ApiError(500, "10007", "Unexpected error", "The opt-out was not stored.")
    return row
