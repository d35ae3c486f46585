"""deliver_sm handled concurrently: while the commit of one deliver_sm is still under way, the bind
goes on reading submit_sm_resp (its window keeps moving) and other deliver_sm; each is acknowledged
when its own commit is done. And the receipts of one job batch are settled together."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

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
    """Holds the deliver_sm whose text is b"hold" until released; records the others at once."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.holding = asyncio.Event()
        self.seen: list[bytes] = []

    async def __call__(self, pdu: DeliverSmPdu) -> None:
        if pdu.short_message == b"hold":
            self.holding.set()
            await self.release.wait()
        self.seen.append(pdu.short_message)


def test_a_slow_commit_does_not_stop_the_bind(sim: SmscSim) -> None:
    async def scenario() -> tuple[list[str], list[bytes], int]:
        inbox = HeldInbox()
        session = await _session(sim.port, inbox)
        try:
            sim.command(mo={"src": "15557654321", "dst": "15550001111", "text": "hold"})
            await asyncio.wait_for(inbox.holding.wait(), 10)
            # the held deliver_sm is not answered, yet submits get their responses ...
            results = await asyncio.wait_for(session.submit(_parts("meanwhile") * 3), 10)
            # ... and their receipts (deliver_sm too) are recorded and answered before it
            await asyncio.to_thread(wait_for_records, sim, "deliver_resp", 3)
            answered_while_held = len(sim.records("deliver_resp"))
            inbox.release.set()
            await asyncio.to_thread(wait_for_records, sim, "deliver_resp", 4)
            await until(lambda: len(inbox.seen) == 4)
            return [r.outcome for r in results], inbox.seen, answered_while_held
        finally:
            await session.stop()

    outcomes, seen, answered_while_held = asyncio.run(scenario())
    assert outcomes == ["accepted"] * 3
    assert answered_while_held == 3
    assert seen[-1] == b"hold" and all(b"stat:DELIVRD" in s for s in seen[:3])
    assert [r["status"] for r in sim.records("deliver_resp")] == [0] * 4
