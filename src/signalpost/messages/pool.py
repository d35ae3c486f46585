"""Choosing the sender from a messaging profile's number pool (`number_pool_settings`).

Candidates are the profile's long codes and toll-free numbers. In order:

1. `sticky_sender`: a destination keeps the number it last got from this profile, while that number
   is still on the profile and usable; the pairing lapses 8 days after the last message.
2. `skip_unhealthy`: numbers whose recent delivery outcomes are poor are left out. A number is
   *unhealthy* when, among its last 50 finalized outbound messages of the past 24 hours, there are
   at least 10 and fewer than half were delivered (see `numbers` health: `success_ratio`).
3. `geomatch`: for a NANP destination, numbers with the destination's area code are preferred when
   the pool has any.
4. `long_code_weight` / `toll_free_weight`: the number type is drawn with these odds among the types
   present, then a number of that type uniformly at random.

No usable number → 40321. All state (sticky pairs, outcomes) lives in the database.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, case, func, insert, select, update
from sqlalchemy.engine import RowMapping

from signalpost.kit.clock import utcnow
from signalpost.kit.db import UnitOfWork
from signalpost.messages.errors import rejection
from signalpost.models import messages, phone_numbers, sticky_senders

STICKY_DAYS = 8
HEALTH_WINDOW = 50
HEALTH_MIN_SAMPLES = 10
HEALTH_MIN_SUCCESS = 0.5
FINALIZED = ("delivered", "delivery_failed", "delivery_unconfirmed", "sending_failed", "expired")


async def delivery_stats(uow: UnitOfWork, number: str) -> tuple[int, int]:
    """(finalized, delivered) among the number's last `HEALTH_WINDOW` finalized messages of 24 h."""
    since = utcnow() - timedelta(hours=24)
    recent = (
        select(messages.c.to_status)
        .where(
            messages.c.direction == "outbound",
            messages.c.from_number == number,
            messages.c.to_status.in_(FINALIZED),
            messages.c.completed_at >= since,
        )
        .order_by(messages.c.completed_at.desc())
        .limit(HEALTH_WINDOW)
        .subquery()
    )
    q = select(
        func.count(),
        func.coalesce(func.sum(case((recent.c.to_status == "delivered", 1), else_=0)), 0),
    ).select_from(recent)
    total, delivered = (await uow.conn.execute(q)).one()
    return int(total), int(delivered)


def is_unhealthy(total: int, delivered: int) -> bool:
    return total >= HEALTH_MIN_SAMPLES and delivered / total < HEALTH_MIN_SUCCESS


def _area_code(e164: str) -> str | None:
    return e164[2:5] if e164.startswith("+1") and len(e164) == 12 else None


def _pick(
    candidates: Sequence[RowMapping], settings: Mapping[str, Any], rng: random.Random
) -> RowMapping:
    by_kind: dict[str, list[RowMapping]] = {"long_code": [], "toll_free": []}
    for c in candidates:
        by_kind["toll_free" if c["type"] in ("toll-free", "tollfree") else "long_code"].append(c)
    weights = {
        "long_code": float(settings.get("long_code_weight") or 0),
        "toll_free": float(settings.get("toll_free_weight") or 0),
    }
    kinds = [k for k in by_kind if by_kind[k] and weights[k] > 0]
    if not kinds:  # every present type has weight 0: fall back to plain uniform choice
        kinds = [k for k in by_kind if by_kind[k]]
        weights = {k: 1.0 for k in kinds}
    kind = rng.choices(kinds, weights=[weights[k] for k in kinds])[0]
    return rng.choice(by_kind[kind])


async def choose_sender(
    uow: UnitOfWork, profile: RowMapping, destination: str, rng: random.Random | None = None
) -> RowMapping:
    """Pick (and remember, for sticky sending) the number that sends to `destination`."""
    settings = profile["number_pool_settings"]
    if not settings:
        raise rejection(
            "40321",
            "Number pool disabled",
            "The messaging profile has no number_pool_settings; send with 'from' or enable the pool.",
            "/messaging_profile_id",
        )
    rng = rng or random.Random()
    candidates = await _candidates(uow, profile["id"], bool(settings.get("skip_unhealthy")))
    if not candidates:
        raise rejection(
            "40321",
            "No usable numbers in the number pool",
            "The messaging profile has no number that can send this message.",
            "/messaging_profile_id",
        )
    now = utcnow()
    sticky = bool(settings.get("sticky_sender"))
    if sticky:
        pair = await _sticky_pair(uow, profile["id"], destination)
        if pair is not None and pair["last_used_at"] >= now - timedelta(days=STICKY_DAYS):
            for c in candidates:
                if c["phone_number"] == pair["phone_number"]:
                    await _remember(uow, profile["id"], destination, c["phone_number"], exists=True)
                    return c
    pool = candidates
    if settings.get("geomatch"):
        area = _area_code(destination)
        local = [c for c in candidates if area and _area_code(c["phone_number"]) == area]
        pool = local or candidates
    chosen = _pick(pool, settings, rng)
    if sticky:
        exists = await _sticky_pair(uow, profile["id"], destination) is not None
        await _remember(uow, profile["id"], destination, chosen["phone_number"], exists=exists)
    return chosen


async def _remember(
    uow: UnitOfWork, profile_id: str, destination: str, number: str, *, exists: bool
) -> None:
    now = utcnow()
    if exists:
        await uow.conn.execute(
            update(sticky_senders)
            .where(
                sticky_senders.c.messaging_profile_id == profile_id,
                sticky_senders.c.destination == destination,
            )
            .values(phone_number=number, last_used_at=now)
        )
    else:
        await uow.conn.execute(
            insert(sticky_senders).values(
                messaging_profile_id=profile_id,
                destination=destination,
                phone_number=number,
                last_used_at=now,
            )
        )


async def _candidates(uow: UnitOfWork, profile_id: str, skip_unhealthy: bool) -> list[RowMapping]:
    """The profile's numbers, in number order; without the unhealthy ones if asked."""
    q = (
        select(phone_numbers)
        .where(phone_numbers.c.messaging_profile_id == profile_id)
        .order_by(phone_numbers.c.phone_number)
    )
    candidates = list((await uow.conn.execute(q)).mappings().all())
    if not skip_unhealthy:
        return candidates
    healthy = []
    for c in candidates:
        if not is_unhealthy(*await delivery_stats(uow, c["phone_number"])):
            healthy.append(c)
    return healthy


async def _sticky_pair(uow: UnitOfWork, profile_id: str, destination: str) -> RowMapping | None:
    """The number that last sent from the profile to `destination` (sticky sender), if any."""
    q = select(sticky_senders).where(
        and_(
            sticky_senders.c.messaging_profile_id == profile_id,
            sticky_senders.c.destination == destination,
        )
    )
    return (await uow.conn.execute(q)).mappings().first()
