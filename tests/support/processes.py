"""signalpost processes for end-to-end tests: spawning `signalpost …` and waiting until it serves."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.wait import wait_until

LOG_LINES = 30  # of each process's log, in a failure's message
_started = itertools.count(1)


def spawn(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    """`signalpost <args>` in a process of its own, its output in `cwd/signalpost-<n>.log` (for
    `wait_ready`'s failure message)."""
    log = cwd / f"signalpost-{next(_started)}.log"
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "signalpost.cli", *args],
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def ready(base: str) -> bool:
    """Whether the server at `base` answers `/readyz` with 200."""
    try:
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def wait_ready(base: str, cwd: Path, timeout: float = 30) -> None:
    """Wait until the server at `base` is ready; if it is not in time, fail with the last lines
    of the logs of the processes spawned in `cwd` (why a process did not come up)."""
    try:
        wait_until(lambda: ready(base), timeout, 0.05)
    except AssertionError as exc:
        tails = [
            f"--- {log.name}\n"
            + "\n".join(log.read_text(errors="replace").splitlines()[-LOG_LINES:])
            for log in sorted(cwd.glob("signalpost-*.log"))
        ]
        raise AssertionError(f"{base} not ready: {exc}\n" + "\n".join(tails)) from None


def crash_test_env(database_url: str, port: int, key: str, **settings: str) -> dict[str, str]:
    """The environment of processes that crash tests kill: short leases, fast polling, no rate
    limits; `settings` adds or overrides `SIGNALPOST_<NAME>` variables."""
    env = {
        **os.environ,
        "SIGNALPOST_DATABASE_URL": database_url,
        "SIGNALPOST_PORT": str(port),
        "SIGNALPOST_API_KEY": key,
        "SIGNALPOST_RATE_LIMITS__ENABLED": "false",
        "SIGNALPOST_JOB_LEASE_SECONDS": "2",
        "SIGNALPOST_WORKER_POLL_INTERVAL": "0.05",
        "SIGNALPOST_LOG_LEVEL": "warning",
    }
    env.update({f"SIGNALPOST_{name.upper()}": value for name, value in settings.items()})
    return env


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM the processes still running, then wait for each (killing those that do not end)."""
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in processes:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
