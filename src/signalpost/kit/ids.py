"""Identifier generators."""

from __future__ import annotations

import os
import secrets
import threading
import time

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def new_uuid() -> str:
    """A UUID version 7: random, but starting with the time, so that rows created one after
    another sit next to each other in primary-key indexes (a new message touches one index page
    instead of a random one)."""
    return new_uuids(1)[0]


def new_uuids(n: int) -> list[str]:
    """`n` UUIDs version 7 (RFC 9562): 48 bits of Unix milliseconds, a 12-bit counter, 62 random
    bits. Ids of this process ascend in the order they were made: the counter counts within a
    millisecond (and moves on to the next one past 4,096). The random bits come from the system's
    source, read a few kilobytes at a time."""
    with _lock:
        ms = time.time_ns() // 1_000_000
        global _last_ms, _counter, _random, _used
        out = []
        for _ in range(n):
            if ms > _last_ms:
                _last_ms, _counter = ms, 0
            else:
                _counter += 1
                if _counter > 0xFFF:
                    _last_ms, _counter = _last_ms + 1, 0
            if _used + 8 > len(_random):
                _random, _used = os.urandom(_RANDOM_CHUNK), 0
            rand_b = int.from_bytes(_random[_used : _used + 8], "big") & _RAND_B
            _used += 8
            value = _last_ms << 80 | 0x7 << 76 | _counter << 64 | 0b10 << 62 | rand_b
            h = f"{value:032x}"
            out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
        return out


_RAND_B = (1 << 62) - 1
_RANDOM_CHUNK = 4096
_lock = threading.Lock()
_last_ms = 0
_counter = 0
_random = b""
_used = 0


def _after_fork() -> None:
    """A child process must not hand out the random bits its parent had read already."""
    global _random, _used, _lock
    _random, _used, _lock = b"", 0, threading.Lock()


os.register_at_fork(after_in_child=_after_fork)


def numeric_id() -> str:
    """A numeric-looking string id such as Telnyx uses for phone numbers (`"1293384261075731499"`)."""
    millis = int(time.time() * 1000)
    return str((millis << 22) | secrets.randbits(22))


def base62(length: int) -> str:
    """An unguessable random base62 string."""
    return "".join(secrets.choice(_BASE62) for _ in range(length))


def api_key() -> str:
    """A new API key in the form Telnyx uses (`KEY…`)."""
    return "KEY" + base62(40)
