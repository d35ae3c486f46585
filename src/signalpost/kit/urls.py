"""The one check of URLs this server will call back (webhook and failover URLs of profiles and
of messages): absolute http or https, a host with an ASCII (IDNA) form, a valid port, no
whitespace or control characters."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from signalpost.kit.errors import invalid

MAX_URL_LENGTH = 2000
# urlsplit silently drops tabs and newlines; a URL holding any whitespace or control character
# is refused instead.
_UNSAFE = re.compile(r"[\x00-\x20\x7f-\x9f]")


def ascii_host(hostname: str) -> str:
    """The host name as the resolver, TLS and `Host` take it: an internationalized name in its
    `xn--` form. UnicodeError for a name that has none (an empty or over-long label)."""
    return hostname.encode("idna").decode("ascii")


def is_http_url(value: str) -> bool:
    if len(value) > MAX_URL_LENGTH or _UNSAFE.search(value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError when out of range or not a number)
        if not parts.hostname:
            return False
        ascii_host(parts.hostname)
    except (UnicodeError, ValueError):
        return False
    return parts.scheme in ("http", "https")


def check_webhook_urls(values: Mapping[str, Any], names: Iterable[str]) -> None:
    """The named webhook URLs are absolute http(s) URLs; `""` and null mean "none".

    Raises 422, code 10003, pointing at the first bad field."""
    for name in names:
        value = values.get(name)
        if value and not (isinstance(value, str) and is_http_url(value)):
            raise invalid(
                f"/{name}",
                f"'{name}' must be an absolute http or https URL (at most {MAX_URL_LENGTH} "
                "characters).",
                code="10003",
                title="Invalid URL",
            )
