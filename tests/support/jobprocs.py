"""A worker process for end-to-end queue tests: real `Worker`s with test job kinds.

    python tests/support/jobprocs.py DATABASE_URL --name NAME [--lease S] [--marker PATH] ...

Kinds (the test creates `job_runs (job_id BIGINT, worker VARCHAR)` in the database):
- `e2e.record`: inserts one `job_runs` row in the job's own unit of work (exactly once per job).
- `e2e.block`: the first process to run it writes NAME to the marker file and then blocks (up to
  `--block-seconds`), so a test can kill it mid-job; a run that finds the marker records the job.

Prints `ready NAME` once it polls for jobs, stops cleanly on SIGTERM/SIGINT (exit code 0) and stops
by itself after `--max-seconds`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from sqlalchemy import text

from signalpost.kit.db import Database, UnitOfWork
from signalpost.kit.queue import Job, JobKind, Worker

INSERT_RUN = text("INSERT INTO job_runs (job_id, worker) VALUES (:job_id, :worker)")


def kinds(name: str, marker: Path | None, block_seconds: float) -> dict[str, JobKind]:
    async def record(uow: UnitOfWork, job: Job) -> None:
        await uow.conn.execute(INSERT_RUN, {"job_id": job.id, "worker": name})

    async def block(db: Database, job: Job) -> None:
        assert marker is not None, "e2e.block needs --marker"
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            async with db.transaction() as uow:
                await uow.conn.execute(INSERT_RUN, {"job_id": job.id, "worker": name})
            return
        with os.fdopen(fd, "w") as f:
            f.write(name)
        print(f"blocking {name} {job.id}", flush=True)
        await asyncio.sleep(block_seconds)  # the test kills this process in the meantime

    return {"e2e.record": JobKind(handler=record), "e2e.block": JobKind(detached=block)}


async def main(args: argparse.Namespace) -> None:
    db = Database(args.database_url)
    workers = [
        Worker(
            db,
            kinds(args.name, args.marker, args.block_seconds),
            name=f"{args.name}-{i}",
            batch=args.batch,
            concurrency=args.concurrency,
            poll_interval=args.poll_interval,
            lease=args.lease,
        )
        for i in range(args.workers)
    ]

    def stop() -> None:
        for w in workers:
            w.stop()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    loop.call_later(args.max_seconds, stop)
    try:
        tasks = [asyncio.create_task(w.run()) for w in workers]
        print(f"ready {args.name}", flush=True)
        await asyncio.gather(*tasks)
    finally:
        with contextlib.suppress(Exception):
            await db.dispose()


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("database_url")
    p.add_argument("--name", required=True)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--batch", type=int, default=5)
    p.add_argument("--concurrency", type=int, default=5)
    p.add_argument("--poll-interval", type=float, default=0.05)
    p.add_argument("--lease", type=float, default=60.0)
    p.add_argument("--marker", type=Path)
    p.add_argument("--block-seconds", type=float, default=60.0)
    p.add_argument("--max-seconds", type=float, default=120.0)
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse(sys.argv[1:])))
