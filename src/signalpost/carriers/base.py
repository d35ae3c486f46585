"""The carrier adapter interface: submit outbound messages, report what happened.

An adapter knows nothing of HTTP routes or webhooks. `submit` answers synchronously whether the
carrier took the message; the delivery receipt that follows is returned as a `Receipt` to be applied
later (the simulator) or arrives on its own (a real SMSC bind calls back into the messages service).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from signalpost.kit.db import UnitOfWork

ReceiptStatus = Literal["delivered", "delivery_failed", "delivery_unconfirmed", "expired"]


@dataclass(frozen=True)
class OutboundSubmit:
    message_id: str
    organization_id: str
    from_number: str
    to_number: str
    text: str | None
    media_urls: list[str]
    parts: int
    encoding: str
    attempt: int  # 1 for the first submission of this message


@dataclass(frozen=True)
class Receipt:
    status: ReceiptStatus
    after: float  # seconds after submission
    error_code: str | None = None


@dataclass(frozen=True)
class SubmitResult:
    outcome: Literal["accepted", "rejected", "throttled"]
    carrier_message_id: str | None = None
    error_code: str | None = None
    retry_after: float = 0.0
    receipt: Receipt | None = None
    to_carrier: str = ""
    to_line_type: str = ""
    on_net: bool = False
    extra: dict[str, object] = field(default_factory=dict)


class Carrier(Protocol):
    name: str

    async def submit(self, message: OutboundSubmit) -> SubmitResult: ...

    async def submit_many(self, messages: Sequence[OutboundSubmit]) -> list[SubmitResult]:
        """Submit several messages; the answers in the same order. An adapter that can do better
        than one at a time (one lookup, one window of an SMPP bind) overrides this."""
        return [await self.submit(m) for m in messages]

    def accepts_mms(self, to_number: str) -> bool:
        """Whether an MMS can reach `to_number` on this carrier (else 40301 or the SMS fallback)."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class LocalCarrier(Protocol):
    """A carrier that answers from this server alone (the simulator): from the database and
    computation, with no I/O of its own. Its answers can be read and recorded in the transaction
    that takes the messages from the queue, in one step, instead of marking them `sending` first so
    that a crash while the carrier has them is noticed."""

    async def submit_within(
        self, uow: UnitOfWork, messages: Sequence[OutboundSubmit]
    ) -> list[SubmitResult]:
        """`submit_many`, reading what it needs in `uow`."""
        ...
