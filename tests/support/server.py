"""A real signalpost server on a real port, in a background thread, for integration tests."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import uvicorn

from signalpost.accounts import service as accounts
from signalpost.app import create_app
from signalpost.context import AppContext
from signalpost.kit.httpserver import http_protocol
from signalpost.settings import Settings

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RunningServer:
    """uvicorn serving `create_app(settings)`; `call()` runs coroutines on the server's own loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.ctx: AppContext = self.app.state.ctx
        self.port = settings.port
        self.base_url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            http=http_protocol(settings.max_header_bytes),  # as `signalpost serve` has it
        )
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve())

    def start(self) -> RunningServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("signalpost test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run a coroutine on the server's event loop (it owns the database engine)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def run(self, fn: Callable[[AppContext], Awaitable[T]], timeout: float = 30) -> T:
        async def go() -> T:
            return await fn(self.ctx)

        return self.call(go(), timeout)

    def new_organization(self, name: str) -> tuple[accounts.Organization, str]:
        """A fresh organization and API key, created directly in the server's database."""

        async def go(ctx: AppContext) -> tuple[accounts.Organization, str]:
            async with ctx.db.transaction() as uow:
                org = await accounts.create_organization(uow, name)
                key = await accounts.add_api_key(uow, org.id)
                return org, key

        return self.run(go)
