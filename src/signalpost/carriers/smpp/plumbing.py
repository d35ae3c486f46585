"""The pieces signalpost plugs into aiosmpplib's ESME: our window (broker), a correlator that only
pairs responses with requests, a throttle that pauses the bind, a rate limit, the reconnect backoff,
and an ESME that hands every deliver_sm to the session before acknowledging it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiosmpplib import (
    ESME,
    AbstractBroker,
    AbstractCorrelator,
    AbstractHook,
    AbstractRateLimiter,
    AbstractRetryTimer,
    AbstractThrottleHandler,
    DeliverSm,
    DeliverSmResp,
    GenericNack,
    PduHeader,
    SmppCommand,
    SmppCommandStatus,
    SmppMessage,
    SubmitSm,
    SubmitSmResp,
)

if TYPE_CHECKING:
    from aiosmpplib.correlator import SegmentStatus

log = logging.getLogger("signalpost.smpp")


class WindowBroker(AbstractBroker):
    """The outbound queue of one session and its window: `dequeue` (aiosmpplib's sender loop)
    takes a permit before each submit_sm; the session gives it back on submit_sm_resp,
    generic_nack, an error or a timeout. `reset` (on every bind) starts a full window."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.queue: asyncio.Queue[SmppMessage] = asyncio.Queue()
        self.permits = asyncio.Semaphore(window)
        self.in_flight = 0
        self.max_in_flight = 0
        self.on_dequeue: Callable[[SmppMessage, asyncio.Semaphore], None] = lambda m, s: None

    def reset(self) -> list[SmppMessage]:
        """A new window; returns the messages still queued (never written), now removed."""
        self.permits = asyncio.Semaphore(self.window)
        self.in_flight = 0
        left: list[SmppMessage] = []
        while not self.queue.empty():
            left.append(self.queue.get_nowait())
        return left

    def release(self, permit: asyncio.Semaphore) -> None:
        permit.release()
        if permit is self.permits:
            self.in_flight -= 1

    async def enqueue(self, message: SmppMessage) -> None:
        self.queue.put_nowait(message)

    async def dequeue(self) -> SmppMessage:
        permit = self.permits
        await permit.acquire()
        try:
            message = await self.queue.get()
        except BaseException:
            permit.release()
            raise
        if permit is self.permits:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.on_dequeue(message, permit)
        return message


class RequestCorrelator(AbstractCorrelator):
    """Pairs a response with its request for aiosmpplib, per session, in memory. Receipts and
    concatenated MO are the session's business (in the database), never aiosmpplib's."""

    def __init__(self) -> None:
        self.requests: dict[int, SmppMessage] = {}

    def get_cumulated_status(self, ref_num: int) -> int:
        return 0

    async def expired(self, smpp_message: SmppMessage) -> None:
        return None

    async def put(self, smpp_message: SmppMessage) -> None:
        self.requests[smpp_message.sequence_num] = smpp_message

    async def put_delivery(self, smsc_message_id: str, submit_sm: SubmitSm) -> None:
        return None

    async def put_delivery_segmented(self, deliver_sm: DeliverSm) -> DeliverSm | None:
        return deliver_sm

    async def get(self, response: SmppMessage) -> SmppMessage | None:
        return self.requests.pop(response.sequence_num, None)

    async def get_segmented(
        self, smpp_seq_num: int, remove: bool = False
    ) -> tuple[SegmentStatus | None, int]:
        return None, 0

    async def get_delivery(self, receipt: DeliverSm) -> SubmitSm | None:
        return None


class PauseOnThrottle(AbstractThrottleHandler):
    """After ESME_RTHROTTLED / ESME_RMSGQFUL the bind sends nothing for a pause that doubles while
    the SMSC keeps throttling (from `base` up to `cap` seconds) and resets on the next success."""

    def __init__(self, base: float = 0.2, cap: float = 10.0) -> None:
        self.base = base
        self.cap = cap
        self.pause = base
        self.until = 0.0
        self.throttles = 0

    async def throttled(self) -> None:
        self.throttles += 1
        self.until = time.monotonic() + self.pause
        self.pause = min(self.pause * 2, self.cap)

    async def not_throttled(self) -> None:
        self.pause = self.base

    async def allow_request(self) -> bool:
        return time.monotonic() >= self.until

    async def throttle_delay(self) -> float:
        return max(0.01, self.until - time.monotonic())


class TokenBucket(AbstractRateLimiter):
    """At most `rate` submit_sm per second (a burst of one second's worth)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.stamp = time.monotonic()

    async def limit(self) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            await asyncio.sleep((1 - self.tokens) / self.rate)


class Backoff(AbstractRetryTimer):
    """Reconnect delays from `low` doubling to `high`; each wait is logged once, with the reason."""

    def __init__(self, name: str, low: float, high: float, reason: Callable[[], str]) -> None:
        self.name = name
        self.low = low
        self.high = high
        self.reason = reason
        self.delay = 0.0

    async def wait(self) -> None:
        if self.delay == 0.0:
            self.delay = self.low
            return
        log.warning(
            "smpp bind %s not bound (%s); next attempt in %.1f s",
            self.name,
            self.reason(),
            self.delay,
        )
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, self.high)

    def reset(self) -> None:
        self.delay = 0.0

    def next_delay(self) -> float:
        return self.delay


class SessionHook(AbstractHook):
    """Forwards what aiosmpplib sees to the session's handlers."""

    def __init__(
        self,
        on_sending: Callable[[SmppMessage], None],
        on_response: Callable[[SmppMessage], None],
        on_send_error: Callable[[SmppMessage, Exception], None],
    ) -> None:
        self.on_sending = on_sending
        self.on_response = on_response
        self.on_send_error = on_send_error

    async def sending(self, smpp_message: SmppMessage, pdu: bytes, client_id: str) -> None:
        self.on_sending(smpp_message)

    async def received(self, smpp_message: SmppMessage | None, pdu: bytes, client_id: str) -> None:
        if isinstance(smpp_message, GenericNack) or (
            isinstance(smpp_message, SubmitSmResp) and not isinstance(smpp_message, DeliverSmResp)
        ):
            self.on_response(smpp_message)

    async def send_error(self, smpp_message: SmppMessage, error: Exception, client_id: str) -> None:
        self.on_send_error(smpp_message, error)


class Esme(ESME):
    """aiosmpplib's ESME with three changes: a deliver_sm is handed to `on_deliver` (with its
    sequence number) instead of being answered at once: the session answers it with
    `answer_deliver` once what it carries is committed (ESME_ROK), or with ESME_RX_T_APPN when that
    failed, so that the SMSC delivers it again; `on_connect` runs before each bind attempt (the
    session fails what the previous link left) and `on_bound` after a successful one."""

    def __init__(
        self,
        *,
        on_deliver: Callable[[Esme, bytes, int], None],
        on_connect: Callable[[], None],
        on_bound: Callable[[], None],
        on_connect_error: Callable[[Exception], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._on_deliver = on_deliver
        self._on_connect = on_connect
        self._on_bound = on_bound
        self._on_connect_error = on_connect_error

    async def connect(self) -> None:
        self._on_connect()
        try:
            await super().connect()
        except Exception as exc:
            self._on_connect_error(exc)
            raise
        self._on_bound()

    async def _handle_request(self, pdu: bytes, header: PduHeader) -> SmppMessage | None:
        if header.smpp_command != SmppCommand.DELIVER_SM:
            result: SmppMessage | None = await super()._handle_request(pdu, header)
            return result
        self._on_deliver(self, pdu, header.sequence_num)
        return None  # the receive loop sends no answer for None: `answer_deliver` does, later

    async def answer_deliver(self, sequence_num: int, ok: bool) -> None:
        status = SmppCommandStatus.ESME_ROK if ok else SmppCommandStatus.ESME_RX_T_APPN
        await self._send_data(DeliverSmResp(sequence_num=sequence_num, command_status=status))
