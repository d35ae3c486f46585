"""One SMPP bind's sustained submit_sm/s: `SmppSession` (our window, pre-encoded parts) driven
directly against the SMSC simulator of the test suite on loopback, without the server.

For each window (default 10 and 64, alternating rounds), `--messages` single-part GSM-7 messages
are submitted by 2 × window concurrent callers, without receipts (registered_delivery 0); it reports
submit_sm/s (first submit to last submit_sm_resp), the largest number in flight seen, and the CPU
time per submit of this process (the session) and of the simulator. A script, not a test:

    .venv/bin/python bench/smpp_bind.py [--messages 20000] [--windows 10 64] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from send_throughput import process_cpu_seconds
from smpp_carrier import start_simulator

from signalpost.carriers.smpp.codec import encode_message
from signalpost.carriers.smpp.pdu import DeliverSmPdu
from signalpost.carriers.smpp.session import BindConfig, SmppSession, SubmitPart

SRC = "+15550001111"


async def _ignore(pdus: Sequence[DeliverSmPdu]) -> None:
    return None


async def one_round(port: int, smsc_pid: int, window: int, messages: int) -> dict[str, Any]:
    config = BindConfig(
        host="127.0.0.1",
        port=port,
        system_id="signalpost",
        password="secret",
        name=f"bench-w{window}",
        window=window,
        registered_delivery=0,
    )
    session = SmppSession(config, _ignore)
    session.start()
    try:
        if not await session.wait_bound(15):
            raise RuntimeError("the bind did not come up")
        encoded = encode_message("bench message over one bind", reference=1)
        part = SubmitPart(
            SRC, "+14156665000", encoded.data_coding, encoded.esm_class, encoded.parts[0]
        )
        await session.submit([part] * window)  # warm up
        outcomes: dict[str, int] = {}
        todo = iter(range(messages))

        async def caller() -> None:
            for _ in todo:
                (result,) = await session.submit([part])
                outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1

        cpu0, smsc0, t0 = time.process_time(), process_cpu_seconds(smsc_pid), time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(2 * window)))
        elapsed = time.perf_counter() - t0
        cpu, smsc1 = time.process_time() - cpu0, process_cpu_seconds(smsc_pid)
        return {
            "window": window,
            "messages": messages,
            "seconds": round(elapsed, 3),
            "submit_sm_per_second": round(messages / elapsed, 1),
            "max_in_flight": session.max_in_flight,
            "outcomes": outcomes,
            "session_cpu_us_per_submit": round(cpu * 1e6 / messages, 1),
            "smsc_cpu_us_per_submit": (
                round((smsc1 - smsc0) * 1e6 / messages, 1)
                if smsc0 is not None and smsc1 is not None
                else None
            ),
        }
    finally:
        await session.stop()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    for i in range(args.rounds):
        for window in args.windows:
            # a fresh simulator per round: its queues and counters start empty
            sim, port = start_simulator()
            try:
                r = await one_round(port, sim.pid, window, args.messages)
            finally:
                sim.send_signal(signal.SIGTERM)
                sim.wait(10)
            results.append(r)
            print(
                f"window {window:>3} #{i + 1}: {r['submit_sm_per_second']:>8.1f} submit_sm/s  "
                f"max in flight {r['max_in_flight']}  session {r['session_cpu_us_per_submit']} µs"
                f" + SMSC {r['smsc_cpu_us_per_submit']} µs CPU/submit  {r['outcomes']}",
                flush=True,
            )
    median = {
        w: statistics.median(r["submit_sm_per_second"] for r in results if r["window"] == w)
        for w in args.windows
    }
    return {"rounds": results, "median_submit_sm_per_second": median}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--windows", type=int, nargs="+", default=[10, 64])
    parser.add_argument("--rounds", type=int, default=2)
    summary = asyncio.run(main_async(parser.parse_args()))
    for window, rate in summary["median_submit_sm_per_second"].items():
        print(f"median window {window:>3}: {rate:>8.1f} submit_sm/s")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
