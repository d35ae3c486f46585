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


def test_a_large_batch_is_signed_on_a_thread_with_valid_signatures() -> None:
    import asyncio
    import threading

    from signalpost.kit.signing import generate_key_pair, verify
    from signalpost.webhooks import jobs

    pairs = [generate_key_pair(), generate_key_pair()]
    items = [
        (pairs[i % 2].seed_b64, b'{"data":{"n":%d}}' % i) for i in range(jobs.SIGN_ON_THREAD + 4)
    ]
    threads: set[str] = set()
    real = jobs.service.request_headers

    def spy(*args: object, **kwargs: object) -> dict[str, str]:
        threads.add(threading.current_thread().name)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    jobs.service.request_headers = spy  # type: ignore[assignment]
    try:
        signed = asyncio.run(jobs._sign(items, "ua/1"))
        small = asyncio.run(jobs._sign(items[:2], "ua/1"))
    finally:
        jobs.service.request_headers = real  # type: ignore[assignment]
    assert len(signed) == len(items) and len(small) == 2
    for i, ((_, body), headers) in enumerate(zip(items, signed, strict=True)):
        assert headers["User-Agent"] == "ua/1"
        assert verify(pairs[i % 2].public_b64, body, headers)
        assert not verify(pairs[(i + 1) % 2].public_b64, body, headers)
    assert threading.main_thread().name in threads  # the small batch: inline
    assert len(threads) == 2  # the large one: on another thread
