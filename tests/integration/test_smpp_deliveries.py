"""While the commit of a deliver_sm is still under way, the bind goes on reading submit_sm_resp
(its window keeps moving) and the deliver_sm that arrive meanwhile; each is acknowledged only after
its own commit."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence

import pytest

from signalpost.carriers.smpp.pdu import DeliverSmPdu
from tests.integration.test_smpp_session import _parts, _session, until
from tests.support.smsc import SmscSim, wait_for_records


@pytest.fixture
def sim() -> Iterator[SmscSim]:
    s = SmscSim()
    yield s
    s.close()


class HeldInbox:
    """Holds a batch holding the deliver_sm whose text is b"hold" until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.holding = asyncio.Event()
        self.seen: list[bytes] = []

    async def __call__(self, pdus: Sequence[DeliverSmPdu]) -> None:
        if any(p.short_message == b"hold" for p in pdus):
            self.holding.set()
            await self.release.wait()
        self.seen.extend(p.short_message for p in pdus)


def test_a_slow_commit_does_not_stop_the_bind(sim: SmscSim) -> None:
    async def scenario() -> tuple[list[str], int, list[bytes]]:
        inbox = HeldInbox()
        session = await _session(sim.port, inbox)
        try:
            sim.command(mo={"src": "15557654321", "dst": "15550001111", "text": "hold"})
            await asyncio.wait_for(inbox.holding.wait(), 10)
            # the held deliver_sm is not answered, yet submits get their responses
            results = await asyncio.wait_for(session.submit(_parts("meanwhile") * 3), 10)
            # their receipts arrive meanwhile; none is answered before it is committed
            await asyncio.to_thread(wait_for_records, sim, "submit", 3)
            answered_while_held = len(sim.records("deliver_resp"))
            inbox.release.set()
            await asyncio.to_thread(wait_for_records, sim, "deliver_resp", 4)
            await until(lambda: len(inbox.seen) == 4)
            return [r.outcome for r in results], answered_while_held, inbox.seen
        finally:
            await session.stop()

    outcomes, answered_while_held, seen = asyncio.run(scenario())
    assert outcomes == ["accepted"] * 3
    assert answered_while_held == 0
    assert seen[0] == b"hold" and all(b"stat:DELIVRD" in s for s in seen[1:])
    assert [r["status"] for r in sim.records("deliver_resp")] == [0] * 4
