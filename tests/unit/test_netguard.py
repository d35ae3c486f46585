"""The outbound address policy (kit.netguard) with a resolver stub: no lookup leaves the process."""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Sequence

import pytest

from signalpost.kit.errors import ApiError
from signalpost.kit.netguard import (
    Blocked,
    OutboundGuard,
    Unresolvable,
    address_kind,
    parse_networks,
    refuse_blocked,
)
from tests.support.resolver import StubResolver


def guard(table: dict[str, list[str]] | None = None, **kw: object) -> OutboundGuard:
    return OutboundGuard(allow_private=False, resolver=StubResolver(table or {}), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.255.0.9", "a loopback address"),
        ("10.0.0.1", "a private address"),
        ("172.16.5.4", "a private address"),
        ("192.168.1.1", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("100.64.0.1", "a shared (CGNAT) address"),
        ("100.127.255.254", "a shared (CGNAT) address"),
        ("224.0.0.1", "a multicast address"),
        ("239.255.255.250", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),
        ("255.255.255.255", "a private address"),
        ("240.0.0.1", "a private address"),
        ("192.0.2.1", "a private address"),
        ("::1", "a loopback address"),
        ("::", "an unspecified address"),
        ("fe80::1", "a link-local address"),
        ("fc00::1", "a private address"),
        ("fd12:3456::1", "a private address"),
        ("ff02::1", "a multicast address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("::ffff:169.254.169.254", "a link-local address"),
        ("::ffff:10.0.0.1", "a private address"),
        ("2002:7f00:1::", "a loopback address"),  # 6to4 of 127.0.0.1
        ("64:ff9b::a00:1", "a private address"),  # NAT64 of 10.0.0.1
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "a private address"),  # Teredo of 10.0.0.1
        ("::7f00:1", "a reserved address"),  # IPv4-compatible 127.0.0.1
        ("8.8.8.8", None),
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
        ("::ffff:8.8.8.8", None),
    ],
)
def test_address_kinds(address: str, kind: str | None) -> None:
    assert address_kind(ipaddress.ip_address(address)) == kind


def test_every_answer_is_checked_and_one_blocked_answer_blocks_the_host() -> None:
    g = guard(
        {
            "public.test": ["93.184.216.34", "2606:4700::1111"],
            "mixed.test": ["93.184.216.34", "10.0.0.1"],
            "mapped.test": ["::ffff:127.0.0.1"],
        }
    )

    async def go() -> None:
        found = await g.addresses("public.test", 80)
        assert [str(a) for a in found] == ["93.184.216.34", "2606:4700::1111"]
        with pytest.raises(
            Blocked, match=re.escape("mixed.test resolves to an address that is not public")
        ):
            await g.addresses("mixed.test", 80)
        with pytest.raises(Blocked):
            await g.addresses("mapped.test", 80)
        with pytest.raises(Blocked, match=re.escape("169.254.169.254 is a link-local address")):
            await g.addresses("169.254.169.254", 80)
        with pytest.raises(Blocked, match="is a loopback address"):
            await g.addresses("[::1]", 80)
        with pytest.raises(Unresolvable):
            await g.addresses("nowhere.test", 80)

    asyncio.run(go())


def test_literal_addresses_are_not_looked_up_and_off_means_everything_is_allowed() -> None:
    resolver = StubResolver({"loop.test": ["127.0.0.1"]})
    off = OutboundGuard(allow_private=True, resolver=resolver)

    async def go() -> None:
        assert [str(a) for a in await off.addresses("loop.test", 80)] == ["127.0.0.1"]
        assert await off.url_problem("http://127.0.0.1:9/") is None
        assert await off.url_problem("gopher://x/") is None  # not this check's business when off
        on = OutboundGuard(allow_private=False, resolver=resolver)
        with pytest.raises(Blocked):
            await on.addresses("127.0.0.1", 80)

    asyncio.run(go())
    assert resolver.lookups == ["loop.test"]


def test_allowed_networks_are_exempt() -> None:
    g = guard(
        {"inside.test": ["10.1.2.3"], "outside.test": ["10.2.0.1"]},
        allowed_networks=parse_networks(["10.1.0.0/16", "fd00::/8"]),
    )

    async def go() -> None:
        assert [str(a) for a in await g.addresses("inside.test", 80)] == ["10.1.2.3"]
        assert await g.addresses("[fd00::5]", 80)
        with pytest.raises(Blocked):
            await g.addresses("outside.test", 80)
        with pytest.raises(Blocked):
            await g.addresses("127.0.0.1", 80)

    asyncio.run(go())


def test_url_problems_at_the_api() -> None:
    g = guard({"loop.test": ["127.0.0.1"], "ok.test": ["93.184.216.34"]})

    async def go() -> None:
        for url in (
            "http://127.0.0.1:8080/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:127.0.0.1]/",
            "https://loop.test/hook",
            "http://loop.test:9000/hook",
        ):
            problem = await g.url_problem(url)
            assert problem is not None and "is not allowed" in problem, url
        assert "not an http or https URL" in (await g.url_problem("file:///etc/passwd") or "")
        assert "not an http or https URL" in (await g.url_problem("gopher://x:70/") or "")
        assert await g.url_problem("https://ok.test/hook") is None
        assert await g.url_problem("https://93.184.216.34/hook") is None
        # A name that does not resolve passes at the API (it is checked again at connect time).
        assert await g.url_problem("https://not-yet.test/hook") is None

    asyncio.run(go())


def test_a_slow_lookup_at_the_api_passes_after_the_timeout() -> None:
    async def slow(host: str, port: int) -> Sequence[str]:
        await asyncio.sleep(5)
        return ["127.0.0.1"]

    g = OutboundGuard(allow_private=False, resolver=slow, api_resolve_timeout=0.05)

    async def go() -> str | None:
        async with asyncio.timeout(2):
            return await g.url_problem("http://slow.test/")

    assert asyncio.run(go()) is None


def test_api_verdicts_are_cached_but_connect_time_always_resolves() -> None:
    resolver = StubResolver({"flip.test": ["93.184.216.34"]})
    g = OutboundGuard(allow_private=False, resolver=resolver)

    async def go() -> None:
        assert await g.url_problem("http://flip.test/") is None
        resolver.set("flip.test", "127.0.0.1")
        assert await g.url_problem("http://flip.test/") is None  # remembered
        with pytest.raises(Blocked):
            await g.addresses("flip.test", 80)

    asyncio.run(go())
    assert resolver.lookups == ["flip.test", "flip.test"]


def test_refuse_blocked_points_at_the_first_refused_field() -> None:
    g = guard({"loop.test": ["127.0.0.1"], "ok.test": ["93.184.216.34"]})

    async def go() -> None:
        await refuse_blocked(g, [("/webhook_url", "http://ok.test/"), ("/x", None), ("/y", "")])
        with pytest.raises(ApiError) as caught:
            await refuse_blocked(
                g,
                [
                    ("/webhook_url", "http://ok.test/"),
                    ("/webhook_failover_url", " http://loop.test/ "),
                    ("/other", "http://10.0.0.1/"),
                ],
            )
        err = caught.value
        assert (err.status, err.code, err.pointer) == (400, "10003", "/webhook_failover_url")
        assert "loop.test" in (err.detail or "")

    asyncio.run(go())


def test_settings_from_the_environment_and_the_guard_they_make(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pydantic import ValidationError

    from signalpost.settings import Settings

    assert Settings().outbound_allow_private is True  # the sandbox default
    assert not OutboundGuard.from_settings(Settings()).enforcing
    monkeypatch.setenv("SIGNALPOST_OUTBOUND_ALLOW_PRIVATE", "false")
    monkeypatch.setenv("SIGNALPOST_OUTBOUND_ALLOWED_NETWORKS", "10.20.0.0/16, fd00:1::/48")
    settings = Settings()
    made = OutboundGuard.from_settings(settings)
    assert made.enforcing
    assert [str(n) for n in made.allowed_networks] == ["10.20.0.0/16", "fd00:1::/48"]
    assert made.address_problem(ipaddress.ip_address("10.20.3.4")) is None
    assert made.address_problem(ipaddress.ip_address("10.21.3.4")) == "a private address"
    monkeypatch.setenv("SIGNALPOST_OUTBOUND_ALLOWED_NETWORKS", "10.20.0.0/16,intranet")
    with pytest.raises(ValidationError, match="intranet"):
        Settings()
