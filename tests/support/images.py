"""Small real images made on the spot (no image files in the repository)."""

from __future__ import annotations

import struct
import zlib


def png(width: int = 64, height: int = 48, rgb: tuple[int, int, int] = (42, 91, 215)) -> bytes:
    """A valid PNG of one colour with a lighter diagonal band, `width` × `height` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    light = tuple(min(255, c + 100) for c in rgb)
    rows = b"".join(
        b"\0"
        + b"".join(bytes(light if abs(x - y * width // height) < 6 else rgb) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
