"""carriers.smpp.session against the smpp34-based SMSC simulator (a subprocess): bind, window,
parts on the wire, throttling, receipts and MO acknowledged after the callback, unbind and link
drops under load, reconnect backoff."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Sequence

import pytest

from signalpost.carriers.smpp.codec import encode_message, split_udh
from signalpost.carriers.smpp.pdu import DeliverSmPdu
from signalpost.carriers.smpp.session import BindConfig, PartResult, SmppSession, SubmitPart
from tests.support.smsc import SmscSim, wait_for_records
from tests.support.tcpproxy import TcpProxy

SRC, DST = "+15550001111", "+15551230001"


@pytest.fixture
def sim() -> Iterator[SmscSim]:
    s = SmscSim()
    yield s
    s.close()


def _config(port: int, **kw: object) -> BindConfig:
    base: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "system_id": "signalpost",
        "password": "secret",
        "name": "test",
        "reconnect_min": 0.1,
        "reconnect_max": 0.5,
        "response_timeout": 3.0,
    }
    base.update(kw)
    return BindConfig(**base)  # type: ignore[arg-type]


def _parts(text: str, ref: int = 7, dst: str = DST) -> list[SubmitPart]:
    encoded = encode_message(text, reference=ref)
    return [SubmitPart(SRC, dst, encoded.data_coding, encoded.esm_class, p) for p in encoded.parts]


class Inbox:
    def __init__(self, fail_first: int = 0) -> None:
        self.seen: list[DeliverSmPdu] = []
        self.fail_first = fail_first

    async def __call__(self, pdus: Sequence[DeliverSmPdu]) -> None:
        if self.fail_first > 0:
            self.fail_first -= 1
            raise RuntimeError("database unavailable")
        self.seen.extend(pdus)


async def until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    """Wait (without blocking the loop) until `predicate()` is truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.005)


async def _session(port: int, inbox: Inbox | None = None, **kw: object) -> SmppSession:
    session = SmppSession(_config(port, **kw), inbox or Inbox())
    session.start()
    assert await session.wait_bound(10), session.stats
    return session


def test_bind_and_single_part_gsm7(sim: SmscSim) -> None:
    async def scenario() -> list[PartResult]:
        session = await _session(sim.port)
        try:
            return await session.submit(_parts("Hello € world"))
        finally:
            await session.stop()

    (result,) = asyncio.run(scenario())
    assert result.outcome == "accepted" and result.carrier_message_id == "1"
    assert sim.records("bind")[0]["system_id"] == "signalpost"
    (submit,) = sim.submits()
    assert submit["dc"] == 0 and submit["esm"] == 0 and submit["rd"] == 1
    assert bytes.fromhex(submit["sm"]) == b"Hello \x1b\x65 world"
    assert submit["src"] == "15550001111" and submit["src_ton"] == 1 and submit["dst_ton"] == 1


@pytest.mark.parametrize(
    ("text", "dc", "bodies"),
    [
        ("a" * 152 + "€" + "b" * 200, 0, [b"a" * 152, b"\x1be" + b"b" * 151, b"b" * 49]),
        ("Ж" * 66 + "😀" + "Ж" * 70, 8, None),
    ],
)
def test_three_part_messages_on_the_wire(
    sim: SmscSim, text: str, dc: int, bodies: list[bytes] | None
) -> None:
    async def scenario() -> list[PartResult]:
        session = await _session(sim.port)
        try:
            return await session.submit(_parts(text, ref=99))
        finally:
            await session.stop()

    results = asyncio.run(scenario())
    assert [r.outcome for r in results] == ["accepted"] * 3
    assert len({r.carrier_message_id for r in results}) == 3
    submits = sorted(sim.submits(), key=lambda s: bytes.fromhex(s["sm"])[5])
    seen = []
    for seq, submit in enumerate(submits, 1):
        sm = bytes.fromhex(submit["sm"])
        assert submit["dc"] == dc and submit["esm"] == 0x40
        assert sm[:6] == bytes([5, 0, 3, 99, 3, seq])
        seen.append(split_udh(sm)[1])
    if bodies is not None:
        assert seen == bodies
    else:
        assert [len(b) for b in seen] == [132, 134, 10]  # the surrogate pair moved whole
        assert b"".join(seen).decode("utf-16-be") == text
        for body in seen:
            body.decode("utf-16-be")


def test_window_is_the_most_in_flight() -> None:
    sim = SmscSim("--resp-delay", "0.05")
    try:

        async def scenario() -> tuple[list[PartResult], int, float]:
            session = await _session(sim.port, window=4)
            try:
                t0 = time.monotonic()
                parts = [p for i in range(40) for p in _parts(f"window {i}")]
                results = await session.submit(parts)
                return results, session.max_in_flight, time.monotonic() - t0
            finally:
                await session.stop()

        results, max_in_flight, elapsed = asyncio.run(scenario())
    finally:
        sim.close()
    assert [r.outcome for r in results] == ["accepted"] * 40
    assert max_in_flight == 4
    assert elapsed >= 40 / 4 * 0.05 * 0.9


def test_throttling_pauses_the_bind_and_resends() -> None:
    sim = SmscSim("--throttle-first", "3")
    try:

        async def scenario() -> tuple[list[PartResult], int]:
            session = await _session(sim.port)
            try:
                return await session.submit(_parts("throttled")), session.stats.throttled
            finally:
                await session.stop()

        (result,), throttled = asyncio.run(scenario())
        statuses = [s["status"] for s in sim.submits()]
    finally:
        sim.close()
    assert result.outcome == "accepted"
    assert throttled == 3 and statuses == [0x58, 0x58, 0x58, 0]


def test_invalid_destination_is_rejected_with_its_code(sim: SmscSim) -> None:
    async def scenario() -> list[PartResult]:
        session = await _session(sim.port)
        try:
            return await session.submit(_parts("x", dst="+15550000011"))
        finally:
            await session.stop()

    (result,) = asyncio.run(scenario())
    assert (result.outcome, result.error_code, result.command_status) == ("rejected", "40012", 0x0B)


def test_deliver_sm_is_acknowledged_only_after_the_callback(sim: SmscSim) -> None:
    inbox = Inbox(fail_first=1)

    async def scenario() -> None:
        session = await _session(sim.port, inbox)
        try:
            sim.command(mo={"src": "15557654321", "dst": "15550001111", "text": "first"})
            await asyncio.to_thread(wait_for_records, sim, "deliver_resp", 1)
            sim.command(mo={"src": "15557654321", "dst": "15550001111", "text": "again"})
            await asyncio.to_thread(wait_for_records, sim, "deliver_resp", 2)
        finally:
            await session.stop()

    asyncio.run(scenario())
    assert [r["status"] for r in sim.records("deliver_resp")] == [0x64, 0]
    assert [p.short_message for p in inbox.seen] == [b"again"]


def test_receipts_reach_the_callback(sim: SmscSim) -> None:
    inbox = Inbox()

    async def scenario() -> list[PartResult]:
        session = await _session(sim.port, inbox)
        try:
            results = await session.submit(_parts("receipt please"))
            await until(lambda: inbox.seen)
            return results
        finally:
            await session.stop()

    (result,) = asyncio.run(scenario())
    (receipt,) = inbox.seen
    assert receipt.is_receipt and receipt.tlv(0x001E) == f"{result.carrier_message_id}\0".encode()


def _load_with_interruption(port: int, interrupt: object, n: int = 300) -> list[PartResult]:
    async def scenario() -> list[PartResult]:
        session = await _session(port, response_timeout=2.0)
        try:
            parts = [p for i in range(n) for p in _parts(f"load {i}")]
            pending = asyncio.ensure_future(session.submit(parts))
            await until(lambda: session.stats.submitted >= n // 4)
            interrupt()  # type: ignore[operator]
            results = await asyncio.wait_for(pending, 30)
            assert await session.wait_bound(10), "the session did not bind again"
            again = await session.submit(_parts("after"))
            assert again[0].outcome == "accepted"
            return results
        finally:
            await session.stop()

    return asyncio.run(scenario())


def test_smsc_unbind_mid_load_answers_every_part() -> None:
    sim = SmscSim("--resp-delay", "0.002")
    try:
        results = _load_with_interruption(sim.port, lambda: sim.command(unbind=True))
        binds = len(sim.records("bind"))
    finally:
        sim.close()
    outcomes = {r.outcome for r in results}
    assert outcomes <= {"accepted", "not_bound", "unconfirmed"}, outcomes
    assert "accepted" in outcomes and binds >= 2


def test_link_drop_mid_load_answers_every_part() -> None:
    sim = SmscSim("--resp-delay", "0.002")
    proxy = TcpProxy(sim.port)
    try:
        results = _load_with_interruption(proxy.port, proxy.cut)
        accepted_ids = {r.carrier_message_id for r in results if r.outcome == "accepted"}
        seen_ids = {s["mid"] for s in sim.submits()}
    finally:
        proxy.close()
        sim.close()
    outcomes = {r.outcome for r in results}
    assert outcomes <= {"accepted", "not_bound", "unconfirmed"}, outcomes
    assert accepted_ids <= seen_ids and len(accepted_ids) >= 300 // 4


def test_reconnect_backoff_is_logged_once_per_step(caplog: pytest.LogCaptureFixture) -> None:
    from tests.support.server import free_port

    port = free_port()  # nothing listens there

    async def scenario() -> SmppSession:
        session = SmppSession(_config(port, reconnect_min=0.1, reconnect_max=0.4), Inbox())
        session.start()
        await asyncio.sleep(1.5)
        result = await session.submit(_parts("nobody"))
        assert result[0].outcome == "not_bound"
        await session.stop()
        return session

    with caplog.at_level(logging.WARNING, logger="signalpost.smpp"):
        session = asyncio.run(scenario())
    lines = [r.getMessage() for r in caplog.records if "next attempt" in r.getMessage()]
    # delays 0.1, 0.2, 0.4, 0.4 …: a handful of attempts in 1.5 s, each logged once, with why
    assert 2 <= len(lines) <= 7, lines
    assert "ConnectionRefusedError" in lines[-1] and "0.4 s" in lines[-1]
    assert session.stats.last_error and session.stats.state == "stopped"


def test_node_smpp_receipts_and_mo_in_data_coding_1_are_decoded() -> None:
    from signalpost.carriers.smpp.codec import decode_text
    from signalpost.carriers.smpp.outcomes import parse_receipt

    sim = SmscSim(node=True)
    inbox = Inbox()
    try:

        async def scenario() -> list[PartResult]:
            session = await _session(sim.port, inbox)
            try:
                results = await session.submit(_parts("to node"))
                sim.command(mo={"src": "15557654321", "dst": "15550001111", "text": "Hi @ $5 {ok}"})
                await until(lambda: len(inbox.seen) >= 2)
                return results
            finally:
                await session.stop()

        (result,) = asyncio.run(scenario())
    finally:
        sim.close()
    receipt = next(p for p in inbox.seen if p.is_receipt)
    mo = next(p for p in inbox.seen if not p.is_receipt)
    assert receipt.data_coding == 1 and mo.data_coding == 1
    info = parse_receipt(decode_text(receipt.short_message, receipt.data_coding), receipt.tlvs)
    assert info is not None
    assert (info.carrier_message_id, info.status) == (result.carrier_message_id, "delivered")
    assert decode_text(mo.short_message, mo.data_coding) == "Hi @ $5 {ok}"
