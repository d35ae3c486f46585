"""The message lifecycle as a carrier that answers on its own (SMPP) sees it
(`carriers.base.MessageEvents`): carriers call these; they never import messages."""

from __future__ import annotations

from collections.abc import Sequence

from signalpost.carriers.base import OutboundSubmit, ReceiptStatus, SubmitResult
from signalpost.context import AppContext
from signalpost.kit.db import UnitOfWork
from signalpost.kit.queue import enqueue
from signalpost.messages import inbound, lifecycle, sending
from signalpost.messages import repository as repo


class CarrierEvents:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    async def sending(self, uow: UnitOfWork, message_ids: Sequence[str]) -> list[OutboundSubmit]:
        rows = await repo.get_many_for_update(uow, message_ids)
        return [
            sending.submission(row)
            for mid in message_ids
            if (row := rows.get(mid)) is not None and row["to_status"] == "sending"
        ]

    async def statuses(self, uow: UnitOfWork, message_ids: Sequence[str]) -> dict[str, str]:
        rows = await repo.get_many_for_update(uow, message_ids)
        return {mid: str(row["to_status"]) for mid, row in rows.items()}

    async def record(
        self, uow: UnitOfWork, answers: Sequence[tuple[str, SubmitResult]]
    ) -> dict[str, float]:
        rows = await repo.get_many_for_update(uow, [mid for mid, _ in answers])
        pairs = [(rows[mid], r) for mid, r in answers if mid in rows]
        retry = await sending.record_submissions(self.ctx, uow, pairs)
        by_delay: dict[float, list[str]] = {}
        for mid, delay in retry.items():
            by_delay.setdefault(delay, []).append(mid)
        for delay, ids in by_delay.items():
            await enqueue(uow, lifecycle.SEND_JOB, {"message_ids": ids}, delay=delay)
        return retry

    async def finalize(
        self, uow: UnitOfWork, receipts: Sequence[tuple[str, ReceiptStatus, str | None]]
    ) -> None:
        if receipts:
            await lifecycle.apply_receipts(uow, [(m, str(s), c) for m, s, c in receipts])

    async def inbound(self, uow: UnitOfWork, from_: str, to: str, text: str, carrier: str) -> None:
        await inbound.receive(
            self.ctx, uow, inbound.Incoming(from_=from_, to=to, text=text, from_carrier=carrier)
        )
