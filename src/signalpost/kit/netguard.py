"""The outbound address policy: where the server may connect when it fetches or posts to a URL that
a user gave it (webhook URLs, MMS media, short-link targets).

With `allow_private` (the default, so that a sandbox can post to a receiver on localhost) every
address is allowed. Without it (`SIGNALPOST_OUTBOUND_ALLOW_PRIVATE=false`, for a gateway that
serves many tenants):

- only `http` and `https` URLs;
- every address a host name resolves to (every A and AAAA answer) must be a public one: not
  loopback, private (RFC 1918, IPv6 unique-local fc00::/7), link-local (169.254.0.0/16 with the
  cloud metadata address, fe80::/10), shared/CGNAT (100.64.0.0/10), multicast, unspecified,
  reserved or otherwise not globally routable. IPv4 addresses inside IPv6 ones (IPv4-mapped,
  6to4, Teredo, NAT64 64:ff9b::/96) are judged as the IPv4 address. One blocked answer blocks the
  host: a name that resolves to a public and a private address is refused;
- networks in `allowed_networks` (CIDRs) are exempt, for receivers the operator trusts.

At connect time (`addresses`) a name is resolved once, every answer checked, and the caller
connects to a checked address, never to the name again: a second resolution (DNS rebinding) has
no chance to answer something else. At the API (`url_problem`) a URL is checked the same way so
that a blocked one is refused where it is given; a name that does not resolve (or not within
`api_resolve_timeout`) passes there, since the check that counts is made at connect time.

The resolver is injectable (`Resolver`): tests map names to addresses without DNS.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from signalpost.kit.errors import ApiError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# (host, port) -> the addresses the host resolves to, as strings; raises OSError when it does not.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

SCHEMES = ("http", "https")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# How long a verdict on a host name is remembered at the API (never at connect time).
API_CACHE_SECONDS = 30.0
API_CACHE_SIZE = 4096


class Blocked(Exception):
    """The destination is refused by the outbound policy; `reason` says why, for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Unresolvable(Exception):
    """The host name has no address (or the lookup failed)."""


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of `host` from the operating system's resolver (numeric forms included)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    out: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in out:
            out.append(address)
    return out


def address_kind(ip: Address) -> str | None:
    """What kind of non-public address `ip` is ("a loopback address", ...), or None if public."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return address_kind(embedded)
    checks: list[tuple[bool, str]] = [
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT, "a shared (CGNAT) address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "an address that is not public"),
    ]
    for hit, kind in checks:
        if hit:
            return kind
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def parse_address(text: str) -> Address | None:
    """`text` as an IP address (IPv6 in brackets or with a zone too), or None for a name."""
    candidate = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        return None


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs (`10.1.2.0/24`, `fd00::/8`, a single address) as networks; ValueError if one is not."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values)


@dataclass
class OutboundGuard:
    """The policy of one process (see the module docstring)."""

    allow_private: bool = True
    allowed_networks: tuple[Network, ...] = ()
    resolver: Resolver = system_resolver
    api_resolve_timeout: float = 2.0
    _api_cache: dict[tuple[str, int], tuple[float, str | None]] = field(
        default_factory=dict, repr=False
    )

    @classmethod
    def from_settings(cls, settings: Any, resolver: Resolver | None = None) -> OutboundGuard:
        return cls(
            allow_private=bool(settings.outbound_allow_private),
            allowed_networks=parse_networks(settings.outbound_allowed_networks),
            resolver=resolver or system_resolver,
        )

    @property
    def enforcing(self) -> bool:
        return not self.allow_private

    def address_problem(self, ip: Address) -> str | None:
        """Why the server may not connect to `ip` ("a loopback address"), or None."""
        if not self.enforcing:
            return None
        if any(ip.version == net.version and ip in net for net in self.allowed_networks):
            return None
        return address_kind(ip)

    async def addresses(self, host: str, port: int) -> list[Address]:
        """The checked addresses to connect to for `host` (resolved once).

        `Blocked` when any answer is not allowed, `Unresolvable` when there is none.
        """
        literal = parse_address(host)
        if literal is not None:
            found = [literal]
        else:
            try:
                answers = await self.resolver(host, port)
            except (OSError, ValueError) as exc:  # UnicodeError is a ValueError
                raise Unresolvable(f"{host} does not resolve") from exc
            found = [ip for ip in (parse_address(a) for a in answers) if ip is not None]
            if not found:
                raise Unresolvable(f"{host} does not resolve")
        for ip in found:
            kind = self.address_problem(ip)
            if kind is not None:
                raise Blocked(_blocked_reason(host, literal is not None, kind))
        return found

    def scheme_problem(self, url: str) -> str | None:
        """What is wrong with `url` without a lookup: its scheme, or a literal address."""
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError:
            return f"'{url[:100]}' is not a valid URL."
        if parts.scheme.lower() not in SCHEMES:
            return f"'{url[:100]}' is not an http or https URL."
        if not host:
            return f"'{url[:100]}' has no host."
        literal = parse_address(host)
        if literal is not None and self.enforcing:
            kind = self.address_problem(literal)
            if kind is not None:
                return _refused(url, _blocked_reason(host, True, kind))
        return None

    async def url_problem(self, url: str, *, fresh: bool = False) -> str | None:
        """Why `url` may not be given to the server (refused at the API), or None.

        Nothing is refused when the guard is off. A name is resolved (its verdict remembered for
        `API_CACHE_SECONDS` unless `fresh`); one that does not resolve in time passes.
        """
        if not self.enforcing:
            return None
        problem = self.scheme_problem(url)
        if problem is not None:
            return problem
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parse_address(host) is not None:
            return None
        try:
            port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        except ValueError:
            return f"'{url[:100]}' has an invalid port."
        reason = await self._host_verdict(host, port, fresh)
        return _refused(url, reason) if reason is not None else None

    async def _host_verdict(self, host: str, port: int, fresh: bool) -> str | None:
        key = (host, port)
        now = time.monotonic()
        cached = self._api_cache.get(key)
        if cached is not None and cached[0] > now and not fresh:
            return cached[1]
        try:
            async with asyncio.timeout(self.api_resolve_timeout):
                await self.addresses(host, port)
            verdict = None
        except Blocked as exc:
            verdict = exc.reason
        except (Unresolvable, TimeoutError):
            verdict = None  # checked again when the server connects
        if len(self._api_cache) >= API_CACHE_SIZE:
            self._api_cache.clear()
        self._api_cache[key] = (now + API_CACHE_SECONDS, verdict)
        return verdict


def _blocked_reason(host: str, literal: bool, kind: str) -> str:
    # A name's answers are not repeated: where an internal name points is not the user's business.
    if literal:
        return f"{host} is {kind}"
    return f"{host} resolves to an address that is not public"


def _refused(url: str, reason: str) -> str:
    return f"'{url[:100]}' is not allowed: {reason} (outbound addresses are restricted on this server)."


async def refuse_blocked(
    guard: OutboundGuard,
    fields: Sequence[tuple[str, str | None]],
    *,
    code: str = "10003",
    title: str = "Invalid URL",
) -> None:
    """Raise a 400 `ApiError` pointing at the first of `(pointer, url)` the guard refuses.

    Does nothing (no lookup) when the guard is off. The URLs are looked up concurrently.
    """
    if not guard.enforcing:
        return
    given = [(pointer, url.strip()) for pointer, url in fields if url and url.strip()]
    if not given:
        return
    problems = await asyncio.gather(*(guard.url_problem(url) for _, url in given))
    for (pointer, _), problem in zip(given, problems, strict=True):
        if problem is not None:
            raise ApiError(400, code, title, problem, pointer=pointer, should_retry=False)
