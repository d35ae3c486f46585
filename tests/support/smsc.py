"""SMSC simulators for the SMPP tests, each a subprocess on a free loopback port: the smpp34-based
`smsc_sim.py` (the default) and the node-smpp one (`smsc_sim_node.js`, data_coding 1 traffic)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import free_port

HERE = Path(__file__).parent
NODE_DIR = Path(__file__).resolve().parents[2] / ".node-smpp"


class SmscSim:
    """A simulator process; `records()` reads what it logged (submits, binds, deliver results)."""

    def __init__(self, *args: str, node: bool = False) -> None:
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="smsc-")
        self.log_path = Path(self._dir.name) / "smsc.jsonl"
        self.log_path.touch()
        self._args = args
        self._node = node
        self.proc: subprocess.Popen[str] | None = None
        self.start()

    def start(self) -> None:
        if self._node:
            cmd = ["node", str(HERE / "smsc_sim_node.js"), str(self.port), str(self.log_path)]
            env = {**os.environ, "NODE_PATH": str(_node_modules())}
        else:
            cmd = [sys.executable, str(HERE / "smsc_sim.py"), "--port", str(self.port)]
            cmd += ["--log", str(self.log_path), *self._args]
            env = dict(os.environ)
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        assert self.proc.stdout is not None
        ready: list[str] = []
        reader = threading.Thread(target=lambda: ready.append(self.proc.stdout.readline()))  # type: ignore[union-attr]
        reader.start()
        reader.join(15)
        if not ready or not ready[0].startswith("ready"):
            self.stop()
            raise RuntimeError(f"SMSC simulator did not start: {ready!r}")

    def command(self, **cmd: Any) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def records(self, event: str | None = None) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                if event is None or record.get("event") == event:
                    out.append(record)
        return out

    def submits(self) -> list[dict[str, Any]]:
        return self.records("submit")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()


def _node_modules() -> Path:
    """node-smpp, installed once into the git-ignored .node-smpp/ (skips when Node is missing)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js/npm not installed")
    if not (NODE_DIR / "node_modules" / "smpp").exists():
        NODE_DIR.mkdir(exist_ok=True)
        try:
            done = subprocess.run(
                [
                    "npm",
                    "install",
                    "--prefix",
                    str(NODE_DIR),
                    "--no-audit",
                    "--no-fund",
                    "smpp@0.5.1",
                ],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.skip("installing node-smpp from the npm registry timed out")
        if done.returncode != 0:
            pytest.skip(f"cannot install node-smpp: {done.stderr[-300:]}")
    return NODE_DIR / "node_modules"


def wait_for_records(
    sim: SmscSim, event: str, count: int, timeout: float = 15.0
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = sim.records(event)
        if len(found) >= count:
            return found
        time.sleep(0.02)
    raise AssertionError(f"{len(found)} {event} records, expected {count}")
