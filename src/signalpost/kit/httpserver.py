"""uvicorn's httptools protocol with a hard bound on the bytes of a request's head.

The application refuses a request whose headers are too many or too large (kit.limits, 431), but
only once the parser has handed over the whole head: httptools keeps a header of any size in
memory until it ends. This protocol counts the bytes that arrive while a head is being parsed and,
past `max_head_bytes`, answers 431 in the error envelope itself, stops parsing, and ends the
connection: the answer, then the end of its side of the stream, then whatever the client still
sends is read and dropped (so the close does not reset the answer away) for a few seconds at most.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from signalpost.kit.jsonio import dumps

LINGER_SECONDS = 5.0


class BoundedHeadProtocol(HttpToolsProtocol):
    max_head_bytes = 128 * 1024
    _head_bytes = 0
    _in_head = False
    _refused = False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # read and dropped until the client closes or the linger ends
        super().data_received(data)
        if self._in_head and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._refuse()

    def _refuse(self) -> None:
        self._refused = True
        body = dumps(
            {
                "errors": [
                    {
                        "code": "10015",
                        "title": "Request header fields too large",
                        "detail": f"A request head may hold at most {self.max_head_bytes} bytes.",
                    }
                ]
            }
        )
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\n"
            b"content-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (len(body), body)
        )
        if self.transport.can_write_eof():
            self.transport.write_eof()
            asyncio.get_running_loop().call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()

    def eof_received(self) -> None:
        if self._refused:
            self.transport.close()


def http_protocol(max_header_bytes: int) -> type[asyncio.Protocol]:
    """The protocol class for `uvicorn.Config(http=...)`: heads are cut off at four times the
    application's header limit (`Settings.max_header_bytes`), which answers below that."""
    bound = 4 * max_header_bytes
    return type("BoundedHeadProtocol", (BoundedHeadProtocol,), {"max_head_bytes": bound})
