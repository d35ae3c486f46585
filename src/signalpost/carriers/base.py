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
    messaging_profile_id: str | None = None  # for the route table


@dataclass(frozen=True)
class Receipt:
    status: ReceiptStatus
    after: float  # seconds after submission
    error_code: str | None = None


@dataclass(frozen=True)
class SubmitResult:
    # "deferred": handed to the process that holds a bind of the message's carrier; the message
    # stays `sending` and that process records the answer.
    outcome: Literal["accepted", "rejected", "throttled", "deferred"]
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


class MessageEvents(Protocol):
    """What a carrier that answers on its own (an SMPP bind) needs of the message lifecycle;
    implemented on the messages side and handed to the carrier, so that carriers import nothing
    of messages."""

    async def sending(self, uow: UnitOfWork, message_ids: Sequence[str]) -> list[OutboundSubmit]:
        """The messages among `message_ids` still `sending`, as submissions."""
        ...

    async def statuses(self, uow: UnitOfWork, message_ids: Sequence[str]) -> dict[str, str]:
        """The current status of each message (missing ones left out)."""
        ...

    async def record(
        self, uow: UnitOfWork, answers: Sequence[tuple[str, SubmitResult]]
    ) -> dict[str, float]:
        """Record the carrier's answers for `sending` messages (by id); returns the delays of
        those to submit again (already queued again for it)."""
        ...

    async def finalize(
        self, uow: UnitOfWork, receipts: Sequence[tuple[str, ReceiptStatus, str | None]]
    ) -> None:
        """Final statuses `(message_id, status, error_code)` of `sent` messages."""
        ...

    async def inbound(self, uow: UnitOfWork, from_: str, to: str, text: str, carrier: str) -> None:
        """A message from a handset to one of our addresses (keywords, webhooks, …)."""
        ...


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
