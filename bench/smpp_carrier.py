"""The SMPP side of the benchmarks: the smpp34-based SMSC simulator of the test suite as a process
on a free loopback port, the server's settings file that makes an SMPP carrier bound to it the
default carrier, and `compare`: alternating rounds of the simulator and SMPP carriers."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

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


Run = Callable[..., Awaitable[dict[str, Any]]]


def _line(label: str, summary: dict[str, Any]) -> str:
    s, e = summary["send"], summary["end_to_end"]
    smsc = e.get("smsc_cpu_ms_per_message")
    return (
        f"{label:<14}: {s['per_second']:>8.1f} accepted/s  {e['per_second']:>8.1f} finalized/s "
        f"({e['finalized']}/{summary['messages']})  server CPU {e['server_cpu_ms_per_message']} ms/msg"
        + (f" + SMSC {smsc} ms/msg" if smsc is not None else "")
        + f"  p50 {s['latency_ms']['p50']} ms  errors {s['errors']}"
    )


def _figures(summary: dict[str, Any]) -> dict[str, float | None]:
    s, e = summary["send"], summary["end_to_end"]
    return {
        "accepted_per_second": s["per_second"],
        "finalized_per_second": e["per_second"],
        "server_cpu_ms_per_message": e["server_cpu_ms_per_message"],
        "smsc_cpu_ms_per_message": e.get("smsc_cpu_ms_per_message"),
    }


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def paired_ratios(
    over: list[dict[str, Any]], under: list[dict[str, Any]], key: str
) -> tuple[list[float | None], list[float] | None]:
    """The ratios of `key` of the runs of two setups, round by round, and their range."""
    pairs = [ratio(a[key], b[key]) for a, b in zip(over, under, strict=True)]
    known = [r for r in pairs if r is not None]
    return pairs, [min(known), max(known)] if known else None


async def compare(run: Run, args: argparse.Namespace) -> dict[str, Any]:
    """Alternate rounds (simulator, smpp, simulator, smpp, …) of `run(args, carrier, echo_ceiling=
    False)`: each carrier's medians, the ratios SMPP / simulator of the medians, and the range of
    the ratios of the round pairs (each SMPP round over the simulator round just before it)."""
    rounds: list[dict[str, Any]] = []
    for i in range(args.rounds):
        for carrier in ("simulator", "smpp"):
            summary = await run(args, carrier, echo_ceiling=False)
            rounds.append(summary)
            print(_line(f"{carrier} #{i + 1}", summary), flush=True)
    figures = {c: [_figures(r) for r in rounds if r["carrier"] == c] for c in ("simulator", "smpp")}

    def median(carrier: str, key: str) -> float | None:
        values = [f[key] for f in figures[carrier]]
        return round(statistics.median(values), 3) if values and None not in values else None

    medians = {c: {key: median(c, key) for key in figures[c][0]} for c in figures}
    ratios: dict[str, dict[str, Any]] = {}
    for key in ("accepted_per_second", "finalized_per_second", "server_cpu_ms_per_message"):
        pairs, spread = paired_ratios(figures["smpp"], figures["simulator"], key)
        ratios[key] = {
            "of_medians": ratio(medians["smpp"][key], medians["simulator"][key]),
            "round_pairs": pairs,
            "range": spread,
        }
    return {
        "window": args.window,
        "rounds": rounds,
        "median": medians,
        "smpp_vs_simulator": ratios,
    }
