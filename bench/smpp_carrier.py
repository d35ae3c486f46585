"""The SMPP side of the benchmarks: the smpp34-based SMSC simulator of the test suite as a process
on a free loopback port, and the server's settings file that makes an SMPP carrier bound to it
the default carrier."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIMULATOR = ROOT / "tests" / "support" / "smsc_sim.py"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_simulator(*args: str) -> tuple[subprocess.Popen[str], int]:
    """The SMSC simulator (every bind accepted, a receipt after --dlr-delay when asked for), once
    it prints that it listens; no per-submit log, so that it spends its CPU on the wire."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(SIMULATOR), "--port", str(port), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()))  # type: ignore[union-attr]
    reader.start()
    reader.join(15)
    if not line or not line[0].startswith("ready"):
        proc.kill()
        proc.wait(5)
        raise RuntimeError(f"the SMSC simulator did not start: {line!r}")
    return proc, port


CONFIG = """\
default_carrier = "upstream"

[[carriers]]
name = "upstream"
kind = "smpp"

[[carriers.binds]]
host = "127.0.0.1"
port = {port}
system_id = "signalpost"
password = "secret"
window = {window}
"""


def smpp_settings(directory: Path, port: int, window: int) -> Path:
    """A settings file whose default carrier is one SMPP bind to the simulator at `port`."""
    path = directory / "smpp.toml"
    path.write_text(CONFIG.format(port=port, window=window))
    return path
