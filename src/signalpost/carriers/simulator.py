"""The carrier simulator: a virtual mobile network for the sandbox (the default carrier).

Numbers owned by any organization on this server are on-net: a message to one is delivered and
arrives there as an inbound message. Every other number is off-net and gets a delivery receipt after
`simulator_latency` seconds. Destinations `+1NPA55501XX` (any area code) choose the outcome by XX:

| XX      | outcome                                                                   |
|---------|---------------------------------------------------------------------------|
| 00–09   | delivered                                                                 |
| 10      | delivery_failed, 40008 (undeliverable)                                    |
| 11      | delivery_unconfirmed (the carrier never sends a receipt)                  |
| 12      | sending_failed, 40001 (not routable: landline)                            |
| 13      | delivery_failed, 40002 (spam block)                                       |
| 14      | expired, 40005 (expired in transit)                                       |
| 15      | delivered after 30 s                                                      |
| 16      | throttled by the carrier (40011) twice, retried, then delivered           |

Destinations `+1NPA55502XX` are simulated handsets that answer each message delivered to them
(not auto-replies) with an inbound message to the sender, shortly after the delivery receipt:

| XX      | the handset answers                                                       |
|---------|---------------------------------------------------------------------------|
| 00      | the same text (echo)                                                      |
| 01      | `STOP` (opts out of the sender's messaging profile)                       |
| 02      | `HELP`                                                                    |
| 03      | `START`                                                                   |
| 04–99   | nothing                                                                   |

Any handset can also write first: `POST /simulator/inbound` or `signalpost inbound`.

The chaos setting (`PUT /simulator/chaos`) adds a probability per failure kind and extra latency;
each organization has its own, applied to its own messages only.

MMS reaches US and Canadian numbers only (as on Telnyx): an MMS to any other country, or to a short
code, is refused at the API with 40301 or, when the profile has `mms_fall_back_to_sms`, sent as an
SMS carrying the media links (`signalpost.messages.media`).
"""

from __future__ import annotations

import random
import re
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import RowMapping

from signalpost.carriers import repository as repo
from signalpost.carriers.base import OutboundSubmit, Receipt, SubmitResult
from signalpost.kit import phone
from signalpost.kit.db import Database, UnitOfWork

MAGIC = re.compile(r"^\+1[0-9]{3}55501([0-9][0-9])\Z")
HANDSET = re.compile(r"^\+1[0-9]{3}55502([0-9][0-9])\Z")
CHAOS_KEY = "simulator.chaos"
ON_NET_CARRIER = "SIGNALPOST SIMULATED NETWORK"
OFF_NET_CARRIER = "SIMULATED MOBILE CARRIER"


class Chaos(BaseModel):
    """Failure probabilities per kind (0–1) and extra latency, for resilience testing."""

    model_config = ConfigDict(extra="forbid")

    sending_failed: float = Field(default=0.0, ge=0, le=1)
    delivery_failed: float = Field(default=0.0, ge=0, le=1)
    delivery_unconfirmed: float = Field(default=0.0, ge=0, le=1)
    expired: float = Field(default=0.0, ge=0, le=1)
    throttled: float = Field(default=0.0, ge=0, le=1)
    extra_latency: float = Field(default=0.0, ge=0, le=3600)

    def total(self) -> float:
        return (
            self.sending_failed
            + self.delivery_failed
            + self.delivery_unconfirmed
            + self.expired
            + self.throttled
        )


def chaos_key(organization_id: str) -> str:
    """The `server_state` key of one organization's chaos setting."""
    return f"{CHAOS_KEY}:{organization_id}"


async def load_chaos(db: Database, organization_id: str) -> Chaos:
    async with db.transaction() as uow:
        value = await repo.get_state(uow, chaos_key(organization_id))
    return Chaos.model_validate(value) if value else Chaos()


async def save_chaos(db: Database, organization_id: str, chaos: Chaos) -> None:
    async with db.transaction() as uow:
        await repo.set_state(uow, chaos_key(organization_id), chaos.model_dump())


MMS_COUNTRIES = frozenset({"US", "CA"})


def mms_capable(to_number: str) -> bool:
    """The simulated network delivers MMS to US and Canadian numbers only, never to short codes."""
    info = phone.parse(to_number)
    return info is not None and info.country_code in MMS_COUNTRIES


def carrier_message_id(message_id: str) -> str:
    """Stable per message, so a resubmission after a crash is recognised as the same message."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"signalpost-simulator:{message_id}"))


class SimulatorCarrier:
    name = "simulator"

    def __init__(self, db: Database, latency: float) -> None:
        self.db = db
        self.latency = latency
        # Per organization: its chaos setting and when to read it again.
        self._chaos: dict[str, tuple[Chaos, float]] = {}

    def forget_chaos(self, organization_id: str) -> None:
        """Read the organization's setting again on its next message (it was just changed)."""
        self._chaos.pop(organization_id, None)

    async def chaos_of(self, uow: UnitOfWork, organization_ids: Iterable[str]) -> dict[str, Chaos]:
        """Each organization's chaos setting, read again at most once a second."""
        now = time.monotonic()
        wanted = set(organization_ids)
        stale = sorted(o for o in wanted if (c := self._chaos.get(o)) is None or c[1] < now)
        if stale:
            values = await repo.get_states(uow, [chaos_key(o) for o in stale])
            if len(self._chaos) > 10_000:
                self._chaos.clear()
            for org in stale:
                value = values.get(chaos_key(org))
                self._chaos[org] = (Chaos.model_validate(value) if value else Chaos(), now + 1.0)
        return {o: self._chaos[o][0] for o in wanted}

    async def close(self) -> None:
        return None

    def accepts_mms(self, to_number: str) -> bool:
        return mms_capable(to_number)

    async def submit(self, message: OutboundSubmit) -> SubmitResult:
        return (await self.submit_many([message]))[0]

    async def submit_many(self, messages: Sequence[OutboundSubmit]) -> list[SubmitResult]:
        """One read of the chaos setting and one on-net lookup for all the destinations."""
        if not messages:
            return []
        async with self.db.transaction() as uow:
            return await self.submit_within(uow, messages)

    async def submit_within(
        self, uow: UnitOfWork, messages: Sequence[OutboundSubmit]
    ) -> list[SubmitResult]:
        """`submit_many` in the caller's unit of work (`carriers.base.LocalCarrier`)."""
        if not messages:
            return []
        chaos = await self.chaos_of(uow, {m.organization_id for m in messages})
        owners = await repo.number_owners(uow, [m.to_number for m in messages])
        return [
            self._answer(m, owners.get(m.to_number), chaos[m.organization_id]) for m in messages
        ]

    def _answer(
        self, message: OutboundSubmit, owner: RowMapping | None, chaos: Chaos
    ) -> SubmitResult:
        cid = carrier_message_id(message.message_id)
        latency = self.latency + chaos.extra_latency
        if owner is not None:
            return SubmitResult(
                "accepted",
                cid,
                receipt=Receipt("delivered", latency),
                to_carrier=ON_NET_CARRIER,
                to_line_type="Wireless" if owner["mobile"] else "VoIP",
                on_net=True,
            )
        info = phone.parse(message.to_number)
        to_carrier = (info.carrier if info else "") or OFF_NET_CARRIER
        line_type = (info.line_type if info else "") or "Wireless"
        common: dict[str, Any] = {"to_carrier": to_carrier, "to_line_type": line_type}

        magic = MAGIC.match(message.to_number)
        if magic:
            return self._magic(int(magic.group(1)), cid, latency, message.attempt, common)
        if chaos.total() > 0:
            rng = random.Random(f"{message.message_id}:{message.attempt}")
            draw = rng.random()
            for kind in (
                "sending_failed",
                "throttled",
                "delivery_failed",
                "delivery_unconfirmed",
                "expired",
            ):
                p = float(getattr(chaos, kind))
                if draw < p:
                    return self._outcome(kind, cid, latency, common)
                draw -= p
        return SubmitResult("accepted", cid, receipt=Receipt("delivered", latency), **common)

    def _magic(
        self, xx: int, cid: str, latency: float, attempt: int, common: dict[str, Any]
    ) -> SubmitResult:
        if xx == 10:
            return SubmitResult(
                "accepted", cid, receipt=Receipt("delivery_failed", latency, "40008"), **common
            )
        if xx == 11:
            return self._outcome("delivery_unconfirmed", cid, latency, common)
        if xx == 12:
            return SubmitResult(
                "rejected", None, error_code="40001", **{**common, "to_line_type": "Wireline"}
            )
        if xx == 13:
            return SubmitResult(
                "accepted", cid, receipt=Receipt("delivery_failed", latency, "40002"), **common
            )
        if xx == 14:
            return self._outcome("expired", cid, latency, common)
        if xx == 15:
            return SubmitResult(
                "accepted", cid, receipt=Receipt("delivered", 30.0 + latency), **common
            )
        if xx == 16 and attempt <= 2:
            return SubmitResult(
                "throttled", None, error_code="40011", retry_after=max(latency, 0.05), **common
            )
        return SubmitResult("accepted", cid, receipt=Receipt("delivered", latency), **common)

    def _outcome(self, kind: str, cid: str, latency: float, common: dict[str, Any]) -> SubmitResult:
        if kind == "sending_failed":
            return SubmitResult("rejected", None, error_code="40008", **common)
        if kind == "throttled":
            return SubmitResult(
                "throttled", None, error_code="40011", retry_after=max(latency, 0.05), **common
            )
        if kind == "delivery_failed":
            return SubmitResult(
                "accepted", cid, receipt=Receipt("delivery_failed", latency, "40008"), **common
            )
        if kind == "delivery_unconfirmed":
            # The carrier never answers; the network gives up waiting and reports it unconfirmed.
            return SubmitResult(
                "accepted",
                cid,
                receipt=Receipt("delivery_unconfirmed", latency * 4 + 0.5),
                **common,
            )
        return SubmitResult("accepted", cid, receipt=Receipt("expired", latency, "40005"), **common)
