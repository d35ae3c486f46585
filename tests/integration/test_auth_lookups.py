"""API key lookups: the requests that carry a key while its cached entry has run out share one
lookup (one transaction, one connection) instead of each opening its own at the same moment."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from signalpost.accounts import service
from signalpost.accounts.deps import authenticate
from signalpost.app import build_context, prepare
from signalpost.kit.errors import ApiError
from tests.conftest import test_settings as make_settings

KEY = "KEYlookups0123456789abcdef"


def _lookups_of(run: Any, database_url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, int]:
    """What `run(ctx)` returns, and how many times the database was asked for a key."""
    seen: list[str] = []
    look_up = service.authenticate

    async def counted(uow: Any, key: str) -> Any:
        seen.append(key)
        return await look_up(uow, key)

    monkeypatch.setattr(service, "authenticate", counted)

    async def go() -> Any:
        ctx = build_context(make_settings(database_url, api_key=KEY))
        try:
            await prepare(ctx)
            return await run(ctx)
        finally:
            await ctx.db.dispose()

    return asyncio.run(go()), len(seen)


def test_requests_with_one_key_share_its_lookup(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def run(ctx: Any) -> list[Any]:
        first = await asyncio.gather(*(authenticate(ctx, f"Bearer {KEY}") for _ in range(40)))
        ctx.extras["auth_cache"].clear()  # the entry ran out
        again = await asyncio.gather(*(authenticate(ctx, f"Bearer {KEY}") for _ in range(40)))
        return first + again

    orgs, lookups = _lookups_of(run, database_url, monkeypatch)
    assert len({org.id for org in orgs}) == 1
    assert lookups == 2  # one per burst, not one per request


def test_an_unknown_key_is_refused_to_every_request_and_not_remembered(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def run(ctx: Any) -> list[Any]:
        answers = []
        for _ in range(2):
            answers += await asyncio.gather(
                *(authenticate(ctx, "Bearer KEYnobody") for _ in range(10)),
                return_exceptions=True,
            )
        return answers

    answers, lookups = _lookups_of(run, database_url, monkeypatch)
    assert all(isinstance(a, ApiError) and a.status == 401 for a in answers), answers
    assert lookups == 2  # looked up again the second time: a refusal is not cached


def test_a_request_that_goes_away_does_not_cancel_the_others_lookup(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def run(ctx: Any) -> list[Any]:
        leaving = asyncio.ensure_future(authenticate(ctx, f"Bearer {KEY}"))
        staying = asyncio.ensure_future(authenticate(ctx, f"Bearer {KEY}"))
        await asyncio.sleep(0)
        leaving.cancel()
        return [await staying]

    (org,), lookups = _lookups_of(run, database_url, monkeypatch)
    assert org.name and lookups == 1
