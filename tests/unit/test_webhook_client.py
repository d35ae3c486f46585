"""The job kind is registered as a batch kind, and the shared HTTP client is closed with the app."""

from __future__ import annotations

import asyncio
from pathlib import Path

from signalpost.app import build_context, close_resources
from signalpost.settings import Settings
from signalpost.webhooks.jobs import HTTP_CLIENT_KEY, http_client
from signalpost.webhooks.service import JOB_KIND


def test_one_shared_client_per_process_closed_on_shutdown(tmp_path: Path) -> None:
    ctx = build_context(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"))
    kind = ctx.job_kinds[JOB_KIND]
    assert kind.batch is not None and kind.detached is None and kind.handler is None

    async def go() -> None:
        client = http_client(ctx)
        assert http_client(ctx) is client
        assert ctx.extras[HTTP_CLIENT_KEY] is client
        await close_resources(ctx)
        assert client.closed
        assert http_client(ctx) is not client  # a closed client is replaced on next use
        await close_resources(ctx)
        await ctx.db.dispose()

    asyncio.run(go())
