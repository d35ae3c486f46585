"""signalpost processes for end-to-end tests: spawning `signalpost …` and waiting until it serves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx


def spawn(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    """`signalpost <args>` in a process of its own, its output discarded."""
    return subprocess.Popen(
        [sys.executable, "-m", "signalpost.cli", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def ready(base: str) -> bool:
    """Whether the server at `base` answers `/readyz` with 200."""
    try:
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
