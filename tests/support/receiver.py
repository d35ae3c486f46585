"""A real local HTTP server that receives webhooks and records them byte for byte."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return orjson.loads(self.body)


def complete_events(received: list[Received]) -> list[dict[str, Any]]:
    """The event objects (`data`) of the POSTs received whole; a POST cut short (its sender was
    killed mid-request) has no complete body and is left out."""
    out = []
    for r in received:
        try:
            out.append(r.json()["data"])
        except ValueError:
            continue
    return out


@dataclass
class Behaviour:
    status: int = 200
    delay: float = 0.0
    body: bytes = b"ok"


@dataclass
class WebhookReceiver:
    """Records every POST; `behave(path, ...)` makes a path answer slowly or with an error."""

    received: list[Received] = field(default_factory=list)
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    host: str = "127.0.0.1"  # another loopback address (127.0.0.2) works on Linux too

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                behaviour = receiver.behaviours.get(self.path, Behaviour())
                with receiver.lock:
                    receiver.received.append(
                        Received(
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            time.time(),
                        )
                    )
                if behaviour.delay:
                    time.sleep(behaviour.delay)
                try:
                    self.send_response(behaviour.status)
                    self.send_header("content-length", str(len(behaviour.body)))
                    self.end_headers()
                    self.wfile.write(behaviour.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((self.host, 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"http://{self.host}:{self.server.server_address[1]}"

    def url(self, path: str = "/hooks") -> str:
        return self.base_url + path

    def behave(self, path: str, status: int = 200, delay: float = 0.0) -> None:
        self.behaviours[path] = Behaviour(status=status, delay=delay)

    def on(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def wait_for(
        self, predicate: Callable[[list[Received]], bool], timeout: float = 15.0
    ) -> list[Received]:
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                snapshot = list(self.received)
            if predicate(snapshot):
                return snapshot
            if time.monotonic() > deadline:
                raise AssertionError(f"webhooks not received in {timeout}s; got {len(snapshot)}")
            time.sleep(0.02)
