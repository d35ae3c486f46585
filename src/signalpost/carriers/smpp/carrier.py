"""The SMPP carrier: messages become pre-encoded parts, go out on this process's bound sessions of
the carrier, and their parts are recorded in the correlator; or, when another process holds the
carrier's binds, they are handed to it (`smpp.submit.<carrier>` jobs, claimed only by holders).

What a message's part results make of it:
- every part accepted (now or by an earlier attempt) → `accepted`, the first part's id as the
  message's carrier id and every part's id in `extra["carrier_message_ids"]`;
- a part rejected → `rejected` with its Telnyx code (parts already accepted may still arrive);
- otherwise (throttled, temporary error, not bound, no submit_sm_resp) → `throttled`: the message is
  queued again and only its parts not yet accepted are submitted next time. A part whose
  submit_sm_resp never came (timeout, link lost) is submitted again: the SMSC may have had it, so a
  handset can get such a part twice. That duplicate window is at most the bind's `window` parts per
  link loss or response timeout; nothing is lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from signalpost.carriers.base import OutboundSubmit, SubmitResult
from signalpost.carriers.smpp import store
from signalpost.carriers.smpp.codec import EncodeError, WireEncoding, encode_message
from signalpost.carriers.smpp.session import PartResult, SmppSession, SubmitPart
from signalpost.kit.clock import utcnow
from signalpost.kit.db import Database
from signalpost.kit.queue import enqueue

RETRY_SECONDS = 1.0
SUBMIT_JOB_PREFIX = "smpp.submit."


def submit_job(carrier: str) -> str:
    return SUBMIT_JOB_PREFIX + carrier


def reference(message_id: str) -> int:
    """The concatenation reference of a message: the same on every attempt."""
    return hashlib.sha256(message_id.encode()).digest()[0]


def encode(message: OutboundSubmit) -> tuple[int, int, tuple[bytes, ...]]:
    """(data_coding, esm_class, parts) of a message, in the encoding the send path chose."""
    wanted: WireEncoding | None = (
        message.encoding if message.encoding in ("GSM-7", "UCS-2") else None  # type: ignore[assignment]
    )
    try:
        encoded = encode_message(message.text or "", wanted, reference(message.message_id))
    except EncodeError:
        encoded = encode_message(message.text or "", None, reference(message.message_id))
    return encoded.data_coding, encoded.esm_class, encoded.parts


def outcome(
    results: Sequence[PartResult | None], earlier: dict[int, str], total: int
) -> SubmitResult:
    """A message's answer from its parts' results (None: accepted before, id in `earlier`)."""
    rejected = next((r for r in results if r is not None and r.outcome == "rejected"), None)
    if rejected is not None:
        return SubmitResult("rejected", error_code=rejected.error_code or "40008")
    ids = dict(earlier)
    for i, r in enumerate(results, 1):
        if r is not None and r.outcome == "accepted" and r.carrier_message_id:
            ids[i] = r.carrier_message_id
    if len(ids) == total:
        ordered = [ids[i] for i in range(1, total + 1)]
        return SubmitResult(
            "accepted", carrier_message_id=ordered[0], extra={"carrier_message_ids": ordered}
        )
    return SubmitResult("throttled", error_code="40011", retry_after=RETRY_SECONDS)


class SmppCarrier:
    """One configured SMPP carrier, as the send path sees it (`carriers.base.Carrier`)."""

    def __init__(
        self,
        name: str,
        db: Database,
        sessions: Callable[[], list[SmppSession]],
        bound_anywhere: Callable[[], Awaitable[bool]],
        validity_seconds: float,
    ) -> None:
        self.name = name
        self.db = db
        self._sessions = sessions
        self._bound_anywhere = bound_anywhere
        self.validity_seconds = validity_seconds
        self._turn = itertools.count()

    def accepts_mms(self, to_number: str) -> bool:
        return False  # SMPP carries text; an MMS falls back to SMS with links, or gets 40301

    async def close(self) -> None:
        return None

    async def submit(self, message: OutboundSubmit) -> SubmitResult:
        return (await self.submit_many([message]))[0]

    async def submit_many(self, messages: Sequence[OutboundSubmit]) -> list[SubmitResult]:
        if not messages:
            return []
        if self._sessions():
            return await self.submit_here(messages)
        return await self._hand_over(messages)

    async def _hand_over(self, messages: Sequence[OutboundSubmit]) -> list[SubmitResult]:
        if not await self._bound_anywhere():
            # No process holds a bound session: back to the queue, until the validity runs out.
            return [SubmitResult("throttled", error_code="40011", retry_after=2.0)] * len(messages)
        async with self.db.transaction() as uow:
            await enqueue(
                uow, submit_job(self.name), {"message_ids": [m.message_id for m in messages]}
            )
        return [SubmitResult("deferred")] * len(messages)

    async def submit_here(self, messages: Sequence[OutboundSubmit]) -> list[SubmitResult]:
        """Submit on this process's bound sessions (round robin per message) and record the
        accepted parts in the correlator before answering."""
        sessions = self._sessions()
        if not sessions:
            return [SubmitResult("throttled", error_code="40011", retry_after=RETRY_SECONDS)] * len(
                messages
            )
        async with self.db.transaction() as uow:
            earlier = await store.accepted_parts(uow, [m.message_id for m in messages])
        plans: list[tuple[OutboundSubmit, int, list[int]]] = []
        batches: dict[int, list[SubmitPart]] = {}
        for m in messages:
            dc, esm, parts = encode(m)
            session_index = next(self._turn) % len(sessions)
            batch = batches.setdefault(session_index, [])
            slots = []
            for i, octets in enumerate(parts, 1):
                if i in earlier.get(m.message_id, {}):
                    slots.append(-1)
                    continue
                slots.append(len(batch))
                batch.append(SubmitPart(m.from_number, m.to_number, dc, esm, octets))
            plans.append((m, session_index, slots))
        answers = dict(
            zip(
                batches,
                await asyncio.gather(*(sessions[i].submit(p) for i, p in batches.items())),
                strict=True,
            )
        )
        return await self._record(plans, answers, earlier)

    async def _record(
        self,
        plans: list[tuple[OutboundSubmit, int, list[int]]],
        answers: dict[int, list[PartResult]],
        earlier: dict[str, dict[int, str]],
    ) -> list[SubmitResult]:
        now = utcnow()
        expires = now + timedelta(seconds=self.validity_seconds)
        rows = []
        results = []
        for m, session_index, slots in plans:
            got = [None if s < 0 else answers[session_index][s] for s in slots]
            for part, r in enumerate(got, 1):
                if r is not None and r.outcome == "accepted" and r.carrier_message_id:
                    rows.append(
                        {
                            "carrier": self.name,
                            "carrier_message_id": r.carrier_message_id,
                            "message_id": m.message_id,
                            "part": part,
                            "parts": len(slots),
                            "status": "sent",
                            "error_code": None,
                            "expires_at": expires,
                            "created_at": now,
                        }
                    )
            results.append(outcome(got, earlier.get(m.message_id, {}), len(slots)))
        async with self.db.transaction() as uow:
            await store.insert_parts(uow, rows)
        return results
