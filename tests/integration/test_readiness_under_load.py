"""`/readyz` under write load: readiness checks never take SQLite's write lock outside the server's
write turns, so writes, reads and health checks arriving together all answer promptly."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import httpx
import pytest

from tests.conftest import Account
from tests.support.server import RunningServer

WRITES = 40
READINESS_CHECKS = 10


async def _drill(base: str, key: str) -> tuple[list[httpx.Response], list[httpx.Response], float]:
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=WRITES + READINESS_CHECKS + 5)
    async with httpx.AsyncClient(base_url=base, timeout=10, limits=limits) as http:

        async def create(i: int) -> httpx.Response:
            return await http.post(
                "/v2/messaging_profiles",
                json={"name": f"drill-{i}", "whitelisted_destinations": ["US"]},
                headers=headers,
            )

        started = time.monotonic()
        writes_and_checks = await asyncio.gather(
            *(create(i) for i in range(WRITES)),
            *(http.get("/readyz") for _ in range(READINESS_CHECKS)),
        )
        health = await http.get("/healthz", timeout=2)
        assert health.status_code == 200
        elapsed = time.monotonic() - started
    return list(writes_and_checks[:WRITES]), list(writes_and_checks[WRITES:]), elapsed


def test_readiness_checks_in_parallel_with_writes_block_nothing(
    server: RunningServer, account: Account
) -> None:
    for _ in range(3):  # the lock wait needed a readiness check and a write to meet: repeat
        writes, checks, elapsed = asyncio.run(_drill(server.base_url, account.api_key))
        assert [r.status_code for r in writes] == [200] * WRITES, [
            r.text for r in writes if r.status_code != 200
        ][:3]
        assert [r.status_code for r in checks] == [200] * READINESS_CHECKS
        assert elapsed < 8, f"the drill took {elapsed:.1f} s"


def test_a_write_lock_held_by_another_process_does_not_freeze_the_server(
    server: RunningServer, account: Account
) -> None:
    """While another connection holds SQLite's write lock, writes wait for it without blocking
    the event loop: health and readiness checks answer meanwhile, and the write goes through
    once the lock is free."""
    if not server.ctx.db.is_sqlite:
        pytest.skip("SQLite's single write lock")
    path = server.settings.database_url.split(":///", 1)[1]
    other = sqlite3.connect(path, isolation_level=None)
    try:

        async def go() -> tuple[httpx.Response, float]:
            headers = {"Authorization": f"Bearer {account.api_key}"}
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
                other.execute("BEGIN IMMEDIATE")
                write = asyncio.ensure_future(
                    http.post(
                        "/v2/messaging_profiles",
                        json={"name": "waits", "whitelisted_destinations": ["US"]},
                        headers=headers,
                    )
                )
                await asyncio.sleep(0.3)  # the write is waiting for the lock by now
                assert not write.done()
                started = time.monotonic()
                assert (await http.get("/healthz", timeout=2)).status_code == 200
                assert (await http.get("/readyz", timeout=2)).status_code == 200
                answered = time.monotonic() - started
                assert not write.done()
                other.execute("COMMIT")
                return await write, answered

        created, answered = asyncio.run(go())
        assert created.status_code == 200, created.text
        assert answered < 2
    finally:
        other.close()
