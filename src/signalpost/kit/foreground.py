"""Requests first: in-process workers give way to API requests.

Under `serve`, the API and the job workers share one event loop. Interleaved, both lose: every
request waits behind batch work, and the workers, woken for every few new jobs, run many small
batches, each paying the fixed cost of a batch (claim, transactions) for little work. So the
application counts the requests in flight (`TrackRequests`), and a worker about to claim jobs first
waits until the API has not been busy for `quiet` seconds (`Foreground.wait_quiet`) — but never
longer than `max_defer`, so background work keeps moving under any load (then in small slices, so
that no request waits long behind it). A burst of requests is
then accepted at full speed, and the jobs it left behind run afterwards in large batches; an
application sending one message at a time never makes the workers wait.

Separate `worker` processes (the scale-out setup) do not wait for anything.
"""

from __future__ import annotations

import asyncio
import time

from starlette.types import ASGIApp, Receive, Scope, Send


class Foreground:
    """How many requests are in flight, and when the API was last busy.

    Busy: at least `busy_at` requests in flight at once — a burst, not an application sending one
    message at a time (whose messages should not wait for anything).
    """

    def __init__(self, *, busy_at: int = 4, quiet: float = 0.05, max_defer: float = 2.0) -> None:
        if busy_at < 1 or quiet <= 0 or max_defer < 0:
            raise ValueError("busy_at and quiet must be positive, max_defer not negative")
        self.busy_at = busy_at
        self.quiet = quiet
        self.max_defer = max_defer
        self.in_flight = 0
        self.last_busy = float("-inf")

    def started(self) -> None:
        self.in_flight += 1
        if self.in_flight >= self.busy_at:
            self.last_busy = time.monotonic()

    def finished(self) -> None:
        self.in_flight -= 1

    def is_quiet(self, now: float) -> bool:
        return self.in_flight < self.busy_at and now - self.last_busy >= self.quiet

    async def wait_quiet(self) -> bool:
        """Wait until the API has not been busy for `quiet` s (True), or `max_defer` s (False)."""
        start = now = time.monotonic()
        while not self.is_quiet(now):
            if now - start >= self.max_defer:
                return False
            await asyncio.sleep(self.quiet)
            now = time.monotonic()
        return True


class TrackRequests:
    """ASGI middleware counting the HTTP requests in flight for a `Foreground`."""

    def __init__(self, app: ASGIApp, foreground: Foreground) -> None:
        self.app = app
        self.foreground = foreground

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.foreground.started()
        try:
            await self.app(scope, receive, send)
        finally:
            self.foreground.finished()
