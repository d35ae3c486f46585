"""On PostgreSQL a worker process is woken by jobs queued in another process (LISTEN/NOTIFY,
kit.queue.notify): it runs them at once, and jobs queued for later when they are due, with its poll
interval far longer than either wait."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text

from signalpost.kit.db import Database
from signalpost.kit.queue import enqueue
from tests.e2e.test_workers import Proc, pg_url, procs, query, runs, worker_proc
from tests.support.wait import wait_until

pytestmark = pytest.mark.postgres
__all__ = ["pg_url", "procs"]  # fixtures

POLL = "30"  # seconds: a job found sooner than this was not found by polling


def listening(url: str) -> bool:
    sql = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND query LIKE 'LISTEN %'"
    )
    return bool(query(url, sql)[0][0])


def queue_one(url: str, delay: float = 0.0) -> float:
    """Queue an `e2e.record` job from this process; the time it was committed."""

    async def go() -> None:
        db = Database(url)
        try:
            async with db.transaction() as uow:
                await enqueue(uow, "e2e.record", {}, delay=delay)
        finally:
            await db.dispose()

    asyncio.run(go())
    return time.monotonic()


def start_idle_worker(url: str, procs: list[Proc]) -> None:
    worker = worker_proc(url, "far", "--poll-interval", POLL)
    procs.append(worker)
    worker.wait_for_line("ready")
    wait_until(lambda: listening(url), 15)
    # Its first claim ran at start; from now on only a notification or the 30 s poll wakes it.
    wait_until(lambda: not query(url, text("SELECT 1 FROM jobs")), 5)


def test_a_job_queued_in_another_process_starts_well_before_the_poll_interval(
    pg_url: str, procs: list[Proc]
) -> None:
    start_idle_worker(pg_url, procs)
    for n in (1, 2, 3):  # each one woken on its own, not by a poll
        queued = queue_one(pg_url)
        wait_until(lambda n=n: len(runs(pg_url)) == n, 10)
        assert time.monotonic() - queued < 5


def test_a_job_queued_for_later_in_another_process_starts_when_due(
    pg_url: str, procs: list[Proc]
) -> None:
    start_idle_worker(pg_url, procs)
    queued = queue_one(pg_url, delay=1.5)
    wait_until(lambda: len(runs(pg_url)) == 1, 15)
    waited = time.monotonic() - queued
    assert 1.4 <= waited < 8, waited
