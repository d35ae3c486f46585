"""Identifier generators."""

from __future__ import annotations

import secrets
import time

import uuid6

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def new_uuid() -> str:
    """A UUID version 7: random, but starting with the time, so that rows created one after
    another sit next to each other in primary-key indexes (a new message touches one index page
    instead of a random one)."""
    return str(uuid6.uuid7())


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
