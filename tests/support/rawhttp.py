"""Raw HTTP/1.1 on a socket: reading a request off a stream (test servers that answer byte for
byte), and a client connection that sends exactly the bytes given and shows what the server does
with the connection."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """The request's head (through the blank line) and its `content-length` body."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head, await reader.readexactly(length)


class RawConnection:
    """One HTTP/1.1 connection driven byte for byte (a client that can misbehave, and that sees
    exactly what the server does with the connection)."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""
        self.reset = False

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def response(self) -> RawResponse:
        """The next response on the connection (a `content-length` body)."""
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                raise ConnectionError(f"connection closed before a response: {self.buffer!r}")
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            if not self._fill():
                raise ConnectionError("connection closed inside a response body")
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return RawResponse(int(lines[0].split(" ")[1]), headers, body)

    def closed_by_server(self, timeout: float = 5.0) -> bool:
        """True when the server closes the connection (cleanly) within `timeout`, False if it
        stays open that long; a reset counts as closed too, and `reset` tells which."""
        self.sock.settimeout(timeout)
        try:
            return not self._fill()
        except TimeoutError:
            return False
        except ConnectionResetError:
            self.reset = True
            return True


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    method: str,
    path: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    chunked: bool = False,
) -> bytes:
    """A request's bytes: `Host`, the headers given, and a `content-length` (or chunked) body.
    Headers that frame the body themselves (`Content-Length`, `Transfer-Encoding`) are sent as
    given, with `body` as it is: a head that announces a body it does not carry."""
    given = headers or {}
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in given.items()]
    framed = any(k.lower() in ("content-length", "transfer-encoding") for k in given)
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    elif not framed and (body or method in ("POST", "PUT", "PATCH")):
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if not chunked:
        return head + body
    return head + (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
