"""A real local HTTP server that serves media files of given sizes and content types."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.server import free_port

PNG_HEAD = b"\x89PNG\r\n\x1a\n"
JPEG_HEAD = b"\xff\xd8\xff\xe0"
GIF_HEAD = b"GIF89a"
MP4_HEAD = b"\0\0\0\x18ftypmp42"


@dataclass
class Served:
    body: bytes
    content_type: str | None
    status: int = 200
    drip: float = 0.0  # seconds between bytes (the body is sent a byte at a time)
    endless: bool = False  # no length: the body goes on until the client hangs up
    location: str | None = None  # a redirect (status 302)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


@dataclass
class MediaServer:
    """`add(...)` registers a file and returns its URL; GETs are counted per path."""

    files: dict[str, Served] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    host: str = "127.0.0.1"  # another loopback address (127.0.0.2) works on Linux too

    def start(self) -> MediaServer:
        media = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                with media.lock:
                    media.hits[path] = media.hits.get(path, 0) + 1
                    served = media.files.get(path)
                if served is None:
                    served = Served(b"not found", "text/plain", 404)
                try:
                    self.send_response(served.status)
                    if served.location:
                        self.send_header("location", served.location)
                    if served.content_type:
                        self.send_header("content-type", served.content_type)
                    if not served.endless:
                        self.send_header("content-length", str(len(served.body)))
                    self.end_headers()
                    if served.endless:
                        while True:
                            self.wfile.write(served.body or b"x" * 65536)
                    elif served.drip:
                        for i in range(len(served.body)):
                            self.wfile.write(served.body[i : i + 1])
                            self.wfile.flush()
                            time.sleep(served.drip)
                    else:
                        self.wfile.write(served.body)
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

    def add(
        self,
        size: int,
        content_type: str | None,
        *,
        head: bytes = b"",
        suffix: str = "",
        status: int = 200,
        drip: float = 0.0,
        endless: bool = False,
    ) -> tuple[str, Served]:
        """A file of `size` bytes starting with `head`, served under a fresh path."""
        filler = (uuid.uuid4().bytes * (size // 16 + 1))[: max(0, size - len(head))]
        served = Served((head + filler)[:size], content_type, status, drip, endless)
        path = f"/m/{uuid.uuid4().hex[:12]}{suffix}"
        with self.lock:
            self.files[path] = served
        return self.base_url + path, served

    def add_redirect(self, location: str) -> str:
        """A path that answers 302 to `location`; returns its URL."""
        path = f"/r/{uuid.uuid4().hex[:12]}"
        with self.lock:
            self.files[path] = Served(b"", None, 302, location=location)
        return self.base_url + path


def unreachable_url() -> str:
    """A URL on a local port that nothing listens on (connection refused)."""
    return f"http://127.0.0.1:{free_port()}/gone.png"
