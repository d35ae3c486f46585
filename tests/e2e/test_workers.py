"""Worker processes on PostgreSQL: several processes share the queue and run each job exactly once,
a killed worker's job is finished by another after its lease, and `signalpost worker` stops cleanly
on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from signalpost.kit import migrate
from signalpost.kit.db import Database
from signalpost.kit.queue import enqueue, enqueue_many
from signalpost.models import jobs
from tests.conftest import create_pg_database, drop_pg_database
from tests.support.wait import wait_until

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
JOBPROCS = ROOT / "tests" / "support" / "jobprocs.py"


class Proc:
    """A child process whose stdout lines are collected in the background."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.popen = subprocess.Popen(
            args,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    def saw(self, prefix: str) -> bool:
        return any(line.startswith(prefix) for line in self.lines)

    def wait_for_line(self, prefix: str, timeout: float = 30) -> None:
        try:
            wait_until(lambda: self.saw(prefix) or self.popen.poll() is not None, timeout)
        finally:
            assert self.saw(prefix), self.output()

    def terminate(self, timeout: float = 15) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)
        self._reader.join(5)

    def output(self) -> str:
        return "\n".join(self.lines[-60:])


def worker_proc(url: str, name: str, *extra: str) -> Proc:
    return Proc([sys.executable, str(JOBPROCS), url, "--name", name, "--max-seconds", "60", *extra])


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database with the `job_runs` table the test kinds write to."""
    url, name = create_pg_database()

    async def prepare() -> None:
        db = Database(url)
        try:
            await migrate.upgrade(db)
            async with db.transaction() as uow:
                await uow.conn.execute(
                    text("CREATE TABLE job_runs (job_id BIGINT NOT NULL, worker VARCHAR(64))")
                )
        finally:
            await db.dispose()

    asyncio.run(prepare())
    yield url
    drop_pg_database(name)


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for p in started:
        p.kill()


def query(url: str, sql: Any) -> list[Any]:
    async def go() -> list[Any]:
        db = Database(url)
        try:
            async with db.transaction() as uow:
                return list((await uow.conn.execute(sql)).all())
        finally:
            await db.dispose()

    return asyncio.run(go())


def add_jobs(url: str, kind: str, n: int) -> list[int]:
    """Queue `n` jobs; their ids are read in the same transaction (running workers may finish and
    delete some as soon as it commits)."""

    async def go() -> list[int]:
        db = Database(url)
        try:
            async with db.transaction() as uow:
                if n == 1:
                    await enqueue(uow, kind, {})
                else:
                    await enqueue_many(uow, [{"kind": kind, "payload": {"i": i}} for i in range(n)])
                await uow.flush()
                found = await uow.conn.execute(select(jobs.c.id).order_by(jobs.c.id))
                return [int(r[0]) for r in found.all()]
        finally:
            await db.dispose()

    return asyncio.run(go())


def runs(url: str) -> list[tuple[int, str]]:
    return [
        (int(r[0]), str(r[1]))
        for r in query(url, text("SELECT job_id, worker FROM job_runs ORDER BY job_id"))
    ]


def test_two_worker_processes_run_each_job_exactly_once(pg_url: str, procs: list[Proc]) -> None:
    n = 300
    procs += [worker_proc(pg_url, "alpha"), worker_proc(pg_url, "beta")]
    for p in procs:
        p.wait_for_line("ready")
    ids = add_jobs(pg_url, "e2e.record", n)
    assert len(ids) == n

    wait_until(lambda: len(runs(pg_url)) >= n and not query(pg_url, select(jobs.c.id)), 30)
    done = runs(pg_url)
    assert sorted(job_id for job_id, _ in done) == ids  # every job, each exactly once
    by_worker = {w: sum(1 for _, name in done if name == w) for w in ("alpha", "beta")}
    assert all(count > 0 for count in by_worker.values()), by_worker
    for p in procs:
        assert p.terminate() == 0, p.output()


def test_a_killed_workers_job_is_reclaimed_and_finished_by_another(
    pg_url: str, procs: list[Proc], tmp_path: Path
) -> None:
    marker = tmp_path / "blocking"
    lease = "1.0"
    for name in ("alpha", "beta"):
        procs.append(worker_proc(pg_url, name, "--lease", lease, "--marker", str(marker)))
    for p in procs:
        p.wait_for_line("ready")
    [job_id] = add_jobs(pg_url, "e2e.block", 1)

    wait_until(lambda: marker.exists() and marker.read_text(), 20)
    blocker_name = marker.read_text()
    blocker = procs[0] if blocker_name == "alpha" else procs[1]
    survivor = procs[1] if blocker is procs[0] else procs[0]
    blocker.popen.send_signal(signal.SIGKILL)
    assert blocker.popen.wait(10) == -signal.SIGKILL
    killed_at = time.monotonic()

    # Once the dead worker's lease has run out, the survivor claims the job again and finishes it.
    wait_until(lambda: runs(pg_url), 20)
    assert runs(pg_url) == [(job_id, "beta" if blocker_name == "alpha" else "alpha")]
    wait_until(lambda: not query(pg_url, select(jobs.c.id)), 10)
    assert time.monotonic() - killed_at < 10
    assert survivor.terminate() == 0, survivor.output()


def signalpost_command() -> list[str]:
    script = Path(sys.executable).parent / "signalpost"
    return [str(script)] if script.exists() else [sys.executable, "-m", "signalpost.cli"]


def test_the_worker_command_starts_and_stops_cleanly_on_sigterm(procs: list[Proc]) -> None:
    url, name = create_pg_database()
    try:
        proc = Proc(
            [*signalpost_command(), "worker", "--database-url", url, "--count", "2"],
            env={"SIGNALPOST_WORKER_POLL_INTERVAL": "0.05"},
        )
        procs.append(proc)
        proc.wait_for_line("signalpost worker:")
        assert proc.popen.poll() is None, proc.output()
        # It migrated the database on start.
        [(version,)] = query(url, text("SELECT version_num FROM alembic_version"))
        assert version
        started = time.monotonic()
        assert proc.terminate() == 0, proc.output()
        assert time.monotonic() - started < 10
    finally:
        drop_pg_database(name)
