"""One SMPP bind: an aiosmpplib ESME under a supervisor, with our window, pre-encoded parts and a
callback for every deliver_sm.

`SmppSession.submit(parts)` answers, per part, what the SMSC said (`PartResult`): accepted with its
message id, throttled (after the bind has paused and retried `throttle_retries` times), to retry
later, rejected, not bound (never written: safe to send again), or unconfirmed (written, but no
submit_sm_resp came before `response_timeout` or the link dropped: the SMSC may or may not have it).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from aiosmpplib import NPI, TON, BindMode, GenericNack, PhoneNumber, SmppMessage, SubmitSm
from aiosmpplib import SubmitSmResp as _SubmitSmResp

from signalpost.carriers.smpp.codec import DC_UCS2
from signalpost.carriers.smpp.outcomes import GENERIC_NACK, submit_status
from signalpost.carriers.smpp.pdu import DeliverSmPdu, PduError, parse_deliver_sm
from signalpost.carriers.smpp.plumbing import (
    Backoff,
    Esme,
    PauseOnThrottle,
    RequestCorrelator,
    SessionHook,
    TokenBucket,
    WindowBroker,
)

log = logging.getLogger("signalpost.smpp")

BindModeName = Literal["transceiver", "transmitter", "receiver"]
PartOutcome = Literal["accepted", "throttled", "retry", "rejected", "not_bound", "unconfirmed"]
SessionState = Literal["stopped", "connecting", "bound"]
# Commits what a batch of deliver_sm carry; they are acknowledged after it returns.
DeliverHandler = Callable[[Sequence[DeliverSmPdu]], Awaitable[None]]
DELIVER_BATCH = 500

_MODES = {
    "transceiver": BindMode.TRANSCEIVER,
    "transmitter": BindMode.TRANSMITTER,
    "receiver": BindMode.RECEIVER,
}


@dataclass(frozen=True)
class BindConfig:
    host: str
    port: int
    system_id: str
    password: str = field(repr=False)  # never in logs or reprs
    name: str = ""
    system_type: str = ""
    mode: BindModeName = "transceiver"
    window: int = 10
    messages_per_second: float | None = None
    source_ton: int | None = None  # None: from the address (alphanumeric 5/0, digits 1/1)
    source_npi: int | None = None
    destination_ton: int = 1
    destination_npi: int = 1
    enquire_link_interval: float = 30.0
    registered_delivery: int = 1
    response_timeout: float = 10.0
    throttle_retries: int = 5
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0

    @property
    def label(self) -> str:
        return self.name or f"{self.system_id}@{self.host}:{self.port}"


@dataclass(frozen=True)
class SubmitPart:
    """One submit_sm: `short_message` already encoded (UDH included when `esm_class` has 0x40)."""

    source: str
    destination: str
    data_coding: int
    esm_class: int
    short_message: bytes
    validity: timedelta | None = None


@dataclass(frozen=True)
class PartResult:
    outcome: PartOutcome
    carrier_message_id: str | None = None
    command_status: int | None = None
    error_code: str | None = None
    detail: str = ""


@dataclass
class SessionStats:
    state: SessionState = "stopped"
    bound_since: float | None = None
    submitted: int = 0
    failed: int = 0
    throttled: int = 0
    receipts: int = 0
    inbound: int = 0
    last_receipt_at: float | None = None  # time.time()
    last_error: str | None = None
    last_error_at: float | None = None
    restarts: int = 0


@dataclass
class _Pending:
    future: asyncio.Future[PartResult]
    queued_at: float
    sent_at: float | None = None
    sequence_num: int | None = None
    permit: asyncio.Semaphore | None = None


def _address(number: str, ton: int | None, npi: int | None) -> PhoneNumber:
    digits = number[1:] if number.startswith("+") else number
    if ton is None:
        alpha = not digits.isdigit()
        ton, npi = (5, 0) if alpha else (1 if number.startswith("+") else 0, 1)
    return PhoneNumber(digits, TON(ton), NPI(npi if npi is not None else 1))


class SmppSession:
    """One configured bind. `start()` runs it under a supervisor until `stop()`."""

    def __init__(self, config: BindConfig, on_deliver: DeliverHandler) -> None:
        self.config = config
        self.stats = SessionStats()
        self._on_deliver = on_deliver
        self._broker = WindowBroker(config.window)
        self._broker.on_dequeue = self._dequeued
        self._throttle = PauseOnThrottle()
        self._pending: dict[str, _Pending] = {}
        self._by_seq: dict[int, str] = {}
        self._keys = itertools.count(1)
        self._bound = asyncio.Event()
        self._stopping = False
        self._esme: Esme | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._inbox: asyncio.Queue[tuple[Esme, bytes, int]] = asyncio.Queue()

    # ------------------------------------------------------------------ public
    @property
    def bound(self) -> bool:
        return self._bound.is_set()

    @property
    def in_flight(self) -> int:
        return self._broker.in_flight

    @property
    def max_in_flight(self) -> int:
        return self._broker.max_in_flight

    async def wait_bound(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._bound.wait(), timeout)
        return self.bound

    def start(self) -> None:
        if self._tasks:
            return
        self._stopping = False
        self._tasks = [
            asyncio.create_task(self._supervise(), name=f"smpp {self.config.label}"),
            asyncio.create_task(self._reap(), name=f"smpp reaper {self.config.label}"),
            asyncio.create_task(self._acknowledge(), name=f"smpp inbox {self.config.label}"),
        ]

    async def stop(self) -> None:
        """Unbind and stop; parts still waiting are answered `not_bound` or `unconfirmed`."""
        self._stopping = True
        esme = self._esme
        if esme is not None and self.bound:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(esme.stop(), 5)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        self._link_down("session stopped")
        self.stats.state = "stopped"

    async def submit(self, parts: Sequence[SubmitPart]) -> list[PartResult]:
        """Submit every part (in order, within the window); one result per part."""
        return list(await asyncio.gather(*(self._submit_one(p) for p in parts)))

    # ------------------------------------------------------------------ submit
    async def _submit_one(self, part: SubmitPart) -> PartResult:
        result = PartResult("not_bound", detail="no attempt")
        for _ in range(self.config.throttle_retries + 1):
            result = await self._submit_once(part)
            if result.outcome != "throttled":
                break
            self.stats.throttled += 1
        if result.outcome == "accepted":
            self.stats.submitted += 1
        elif result.outcome in ("rejected", "unconfirmed", "retry", "throttled"):
            self.stats.failed += 1
        return result

    async def _submit_once(self, part: SubmitPart) -> PartResult:
        if not self.bound or self.config.mode == "receiver":
            return PartResult("not_bound", detail=f"bind {self.config.label} is not bound")
        key = str(next(self._keys))
        future: asyncio.Future[PartResult] = asyncio.get_running_loop().create_future()
        self._pending[key] = _Pending(future, time.monotonic())
        message = SubmitSm(
            short_message="-",  # a placeholder aiosmpplib requires; the octets are set below
            source=_address(part.source, self.config.source_ton, self.config.source_npi),
            destination=_address(
                part.destination, self.config.destination_ton, self.config.destination_npi
            ),
            esm_class=part.esm_class,
            registered_delivery=self.config.registered_delivery,
            encoding="ucs2" if part.data_coding == DC_UCS2 else "gsm0338",
            validity_period=part.validity,
            log_id=key,
        )
        # (an empty text goes as one space: aiosmpplib re-encodes an empty octet string)
        message.set_encoded_message(part.short_message or b" ")
        await self._broker.enqueue(message)
        try:
            return await future
        finally:
            self._forget(key)

    def _dequeued(self, message: SmppMessage, permit: asyncio.Semaphore) -> None:
        pending = self._pending.get(getattr(message, "log_id", ""))
        if pending is None or pending.future.done():
            self._broker.release(permit)
            return
        pending.permit = permit

    def _sending(self, message: SmppMessage) -> None:
        if isinstance(message, SubmitSm):
            pending = self._pending.get(message.log_id)
            if pending is not None:
                pending.sent_at = time.monotonic()
                pending.sequence_num = message.sequence_num
                self._by_seq[message.sequence_num] = message.log_id

    def _response(self, message: SmppMessage) -> None:
        key = self._by_seq.pop(message.sequence_num, None)
        if key is None:
            return
        if isinstance(message, GenericNack):
            status = GENERIC_NACK
            found = submit_status(GENERIC_NACK)
            result = PartResult(found.outcome, None, status, found.error_code, "generic_nack")
        else:
            assert isinstance(message, _SubmitSmResp)
            status = int(message.command_status)
            found = submit_status(status)
            carrier_id = message.message_id if found.outcome == "accepted" else None
            detail = "" if found.outcome == "accepted" else f"submit_sm_resp status 0x{status:02X}"
            result = PartResult(found.outcome, carrier_id, status, found.error_code, detail)
        self._resolve(key, result)

    def _send_error(self, message: SmppMessage, error: Exception) -> None:
        key = getattr(message, "log_id", "")
        pending = self._pending.get(key)
        outcome: PartOutcome = "unconfirmed" if pending and pending.sent_at else "not_bound"
        if isinstance(error, ValueError):
            outcome = "rejected"
        self._resolve(key, PartResult(outcome, error_code="40008", detail=repr(error)))

    def _resolve(self, key: str, result: PartResult) -> None:
        pending = self._pending.get(key)
        if pending is None:
            return
        if pending.permit is not None:
            self._broker.release(pending.permit)
            pending.permit = None
        if not pending.future.done():
            pending.future.set_result(result)

    def _forget(self, key: str) -> None:
        pending = self._pending.pop(key, None)
        if pending is not None and pending.sequence_num is not None:
            self._by_seq.pop(pending.sequence_num, None)
        if pending is not None and pending.permit is not None:
            self._broker.release(pending.permit)
            pending.permit = None

    # ------------------------------------------------------------------ link
    def _connecting(self) -> None:
        if self.bound:
            self._note_error("link closed")
        self._link_down("link lost before an answer")
        self.stats.state = "connecting"

    def _link_down(self, why: str) -> None:
        self._bound.clear()
        self.stats.bound_since = None
        for message in self._broker.reset():
            self._resolve(getattr(message, "log_id", ""), PartResult("not_bound", detail=why))
        for key, pending in list(self._pending.items()):
            outcome: PartOutcome = "unconfirmed" if pending.sent_at else "not_bound"
            self._resolve(key, PartResult(outcome, error_code="40008", detail=why))
        self._by_seq.clear()

    def _now_bound(self) -> None:
        self._link_down("rebound")
        self.stats.state = "bound"
        self.stats.bound_since = time.time()
        self._bound.set()
        log.info("smpp bind %s bound", self.config.label)

    def _note_error(self, error: str) -> None:
        self.stats.last_error = error
        self.stats.last_error_at = time.time()

    def _connect_failed(self, exc: Exception) -> None:
        self._note_error(f"{type(exc).__name__}: {exc}" if str(exc) else repr(exc))

    def _received(self, esme: Esme, pdu: bytes, sequence_num: int) -> None:
        self._inbox.put_nowait((esme, pdu, sequence_num))

    async def _acknowledge(self) -> None:
        """Commit what the deliver_sm received carry, many at a time (one call of the handler),
        then answer each: ESME_ROK after the commit, ESME_RX_T_APPN when it failed."""
        while True:
            batch = [await self._inbox.get()]
            while len(batch) < DELIVER_BATCH and not self._inbox.empty():
                batch.append(self._inbox.get_nowait())
            parsed: list[DeliverSmPdu] = []
            for _, raw, _ in batch:
                try:
                    parsed.append(parse_deliver_sm(raw))
                except PduError as exc:  # acknowledged, dropped
                    log.warning(
                        "smpp bind %s: unreadable deliver_sm dropped: %s", self.config.label, exc
                    )
            ok = True
            try:
                await self._on_deliver(parsed)
            except Exception:
                ok = False
                log.exception(
                    "smpp bind %s: deliver_sm not recorded (asked again)", self.config.label
                )
            if ok:
                self._count(parsed)
            for esme, _, seq in batch:
                with contextlib.suppress(Exception):  # link gone: the SMSC delivers it again
                    await esme.answer_deliver(seq, ok)

    def _count(self, parsed: Sequence[DeliverSmPdu]) -> None:
        receipts = sum(1 for p in parsed if p.is_receipt)
        self.stats.receipts += receipts
        self.stats.inbound += len(parsed) - receipts
        if receipts:
            self.stats.last_receipt_at = time.time()

    def _build(self) -> Esme:
        c = self.config
        return Esme(
            on_deliver=self._received,
            on_connect=self._connecting,
            on_bound=self._now_bound,
            on_connect_error=self._connect_failed,
            smsc_host=c.host,
            smsc_port=c.port,
            system_id=c.system_id,
            password=c.password,
            system_type=c.system_type,
            bind_mode=_MODES[c.mode],
            enquire_link_interval=float(c.enquire_link_interval),
            log_level=os.environ.get("SIGNALPOST_SMPP_TRACE", "CRITICAL"),
            log_handler=None if os.environ.get("SIGNALPOST_SMPP_TRACE") else logging.NullHandler(),
            hook=SessionHook(self._sending, self._response, self._send_error),
            broker=self._broker,
            correlator=RequestCorrelator(),
            throttle_handler=self._throttle,
            rate_limiter=TokenBucket(c.messages_per_second) if c.messages_per_second else None,
            retry_timer=Backoff(
                c.label, c.reconnect_min, c.reconnect_max, lambda: self.stats.last_error or "?"
            ),
            socket_timeout=max(5.0, float(c.response_timeout)),
        )

    async def _supervise(self) -> None:
        delay = self.config.reconnect_min
        while not self._stopping:
            self._esme = self._build()
            try:
                await self._esme.start()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stats.restarts += 1
                self._connect_failed(exc)
                log.exception(
                    "smpp bind %s: session failed; restarting in %.1f s", self.config.label, delay
                )
            self._link_down("session restarted")
            if self._stopping:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.reconnect_max)

    async def _reap(self) -> None:
        """Answer parts whose submit_sm_resp is overdue: `unconfirmed`, and the permit back."""
        timeout = self.config.response_timeout
        while True:
            await asyncio.sleep(min(1.0, timeout / 4))
            now = time.monotonic()
            for key, pending in list(self._pending.items()):
                if pending.sent_at is not None and now - pending.sent_at > timeout:
                    self._resolve(
                        key,
                        PartResult(
                            "unconfirmed", error_code="40008", detail="no submit_sm_resp in time"
                        ),
                    )
