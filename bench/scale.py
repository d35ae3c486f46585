"""Scale-out benchmark: process layouts on PostgreSQL against one `serve` on SQLite, in alternated
rounds, each setup on a fresh database.

Each round runs every setup once, in this order, then the next round starts:

- `sqlite`: one `serve` on SQLite with its in-process workers (the reference);
- `pg 1+1`: one `serve --no-workers` and one `worker` process on PostgreSQL;
- `pg 2+2`: two of each, the same load (`--concurrency` connections dealt out over the API
  processes, as one client behind a load balancer);
- `pg 2+2 x2`: two of each under twice the load (each API process gets as many connections as the
  one of `pg 1+1`: what a second host is added for);
- `pg 1+1 1 core`, `pg 2+2 x2 1 core`: the same with the server processes pinned to one core
  (`taskset -c 0`; the database server and this script are not pinned);
- `pg 1+1 twice`: the control for 2+2 x2: two 1+1 stacks side by side, each on a database of its
  own and under the load of `pg 1+1` (half the messages each), their measured loads started at
  the same moment. They share nothing but the machine and its PostgreSQL server, so what they
  spend per message beyond one 1+1 is what running side by side on this machine costs, not work
  that more processes of one deployment add.

Every run is `bench/send_throughput.py`'s (`run`): accepted/s, finalized/s end to end, CPU per
finalized message of the server processes (and of the API processes alone, where workers run in
processes of their own) and of the database's backends (PostgreSQL on this machine), and the echo
ceiling of the machine at that moment. At the end it prints each setup's
medians and, for each ratio the scale-out targets are stated in, its value on the medians and
its range over the rounds (each round's setups ran minutes apart at most, on the same machine):

- PostgreSQL 1+1 / SQLite, finalized/s;
- 2+2 / 1+1 and 2+2 x2 / 1+1, CPU per message (the servers', with the database's, the API
  processes'), and 2+2 x2 / 1+1 with the servers on one core: the processes then take turns on
  that core instead of running side by side, which separates the work added by more processes
  from what running in parallel on this machine's two cores costs;
- 2+2 x2 / two 1+1 side by side, and two 1+1 side by side / 1+1, CPU per message;
- 1+1 and 2+2 x2 on two cores / on one core, finalized/s;

and the JSON of it all as its last line. `make bench-scale` runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from send_throughput import run
from smpp_carrier import paired_ratios, ratio

SETUPS: dict[str, dict[str, Any]] = {
    "sqlite": {"database": "sqlite"},
    "pg 1+1": {"api_processes": 1, "worker_processes": 1},
    "pg 2+2": {"api_processes": 2, "worker_processes": 2},
    "pg 2+2 x2": {"api_processes": 2, "worker_processes": 2, "load": 2},
    "pg 1+1 1 core": {"api_processes": 1, "worker_processes": 1, "taskset": "0"},
    "pg 2+2 x2 1 core": {"api_processes": 2, "worker_processes": 2, "load": 2, "taskset": "0"},
    "pg 1+1 twice": {"api_processes": 1, "worker_processes": 1, "stacks": 2},
}
FIGURES = (
    ("accepted/s", "send", "per_second"),
    ("finalized/s", "end_to_end", "per_second"),
    ("server CPU ms/msg", "end_to_end", "server_cpu_ms_per_message"),
    ("API CPU ms/msg", "end_to_end", "api_cpu_ms_per_message"),
    ("database CPU ms/msg", "end_to_end", "database_cpu_ms_per_message"),
    ("total CPU ms/msg", "end_to_end", "total_cpu_ms_per_message"),
    ("echo ceiling req/s", "echo_ceiling", "per_second"),
)
# (name, setup over setup, figure)
RATIOS = (
    ("PG 1+1 / SQLite, finalized/s", "pg 1+1", "sqlite", "finalized/s"),
    ("2+2 / 1+1, server CPU per message", "pg 2+2", "pg 1+1", "server CPU ms/msg"),
    ("2+2 / 1+1, total CPU per message", "pg 2+2", "pg 1+1", "total CPU ms/msg"),
    ("2+2 x2 / 1+1, server CPU per message", "pg 2+2 x2", "pg 1+1", "server CPU ms/msg"),
    ("2+2 x2 / 1+1, total CPU per message", "pg 2+2 x2", "pg 1+1", "total CPU ms/msg"),
    ("2+2 x2 / 1+1, API CPU per message", "pg 2+2 x2", "pg 1+1", "API CPU ms/msg"),
    (
        "2+2 x2 / 1+1 on one core, total CPU per message",
        "pg 2+2 x2 1 core",
        "pg 1+1 1 core",
        "total CPU ms/msg",
    ),
    (
        "2+2 x2 / two 1+1 side by side, total CPU per message",
        "pg 2+2 x2",
        "pg 1+1 twice",
        "total CPU ms/msg",
    ),
    (
        "two 1+1 side by side / 1+1, total CPU per message",
        "pg 1+1 twice",
        "pg 1+1",
        "total CPU ms/msg",
    ),
    (
        "two 1+1 side by side / 1+1, API CPU per message",
        "pg 1+1 twice",
        "pg 1+1",
        "API CPU ms/msg",
    ),
    ("2+2 x2 / 1+1, finalized/s", "pg 2+2 x2", "pg 1+1", "finalized/s"),
    ("1+1 two cores / one core, finalized/s", "pg 1+1", "pg 1+1 1 core", "finalized/s"),
    ("2+2 x2 two cores / one core, finalized/s", "pg 2+2 x2", "pg 2+2 x2 1 core", "finalized/s"),
)


def _figures(summary: dict[str, Any]) -> dict[str, float | None]:
    return {name: summary.get(part, {}).get(key) for name, part, key in FIGURES}


async def _fresh_database(admin_url: str) -> str:
    name = "signalpost_bench_" + secrets.token_hex(4)
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def _drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def run_setup(args: argparse.Namespace, setup: dict[str, Any]) -> dict[str, Any]:
    """One run of `setup` on a fresh database (dropped afterwards); a setup of several `stacks`
    runs that many side by side, each on a database of its own, and sums them up (`_together`)."""
    stacks = setup.get("stacks", 1)
    per = argparse.Namespace(
        messages=args.messages // stacks,
        concurrency=args.concurrency * setup.get("load", 1),
        workers=args.workers,
        latency=args.latency,
        base_url=None,
        api_key=None,
        database_url=None,
        e2e_timeout=args.e2e_timeout,
        api_processes=setup.get("api_processes", 1),
        worker_processes=setup.get("worker_processes", 0),
        taskset=setup.get("taskset"),
        report_storage=False,
        window=10,
    )
    if setup.get("database") == "sqlite":
        return await run(per)
    if stacks > 1:
        barrier = asyncio.Barrier(stacks)
        parts = await asyncio.gather(
            *(
                _on_fresh_database(args, argparse.Namespace(**vars(per)), barrier)
                for _ in range(stacks)
            )
        )
        return _together(parts)
    return await _on_fresh_database(args, per)


async def _on_fresh_database(
    args: argparse.Namespace, per: argparse.Namespace, barrier: asyncio.Barrier | None = None
) -> dict[str, Any]:
    name = await _fresh_database(args.pg_admin_url)
    base = args.pg_admin_url.rsplit("/", 1)[0]
    per.database_url = f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
    try:
        return await run(per, echo_ceiling=barrier is None, start_together=barrier)
    finally:
        await _drop_database(args.pg_admin_url, name)


def _together(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of stacks run side by side as one: rates over the longest run, CPU per message
    over all their messages (no echo ceiling: it would run after each, not beside the others)."""
    done = sum(p["end_to_end"]["finalized"] for p in parts)
    requests = sum(p["send"]["requests"] for p in parts)

    def per_message(key: str) -> float | None:
        values = [p["end_to_end"][key] for p in parts]
        if None in values or not done:
            return None
        weighted = sum(v * p["end_to_end"]["finalized"] for v, p in zip(values, parts, strict=True))
        return round(weighted / done, 3)

    send_seconds = max(p["send"]["seconds"] for p in parts)
    e2e_seconds = max(p["end_to_end"]["seconds"] for p in parts)
    return {
        "send": {
            "requests": requests,
            "per_second": round(requests / send_seconds, 1) if send_seconds else 0.0,
        },
        "end_to_end": {
            "finalized": done,
            "per_second": round(done / e2e_seconds, 1) if e2e_seconds else 0.0,
            **{
                key: per_message(key)
                for key in (
                    "server_cpu_ms_per_message",
                    "api_cpu_ms_per_message",
                    "database_cpu_ms_per_message",
                    "total_cpu_ms_per_message",
                )
            },
        },
    }


def _line(label: str, f: dict[str, float | None]) -> str:
    return f"{label:<22}" + "  ".join(f"{name} {f[name]}" for name, _, _ in FIGURES)


async def series(args: argparse.Namespace) -> dict[str, Any]:
    chosen = {name: SETUPS[name] for name in args.setups}
    figures: dict[str, list[dict[str, float | None]]] = {name: [] for name in chosen}
    for i in range(args.rounds):
        for name, setup in chosen.items():
            f = _figures(await run_setup(args, setup))
            figures[name].append(f)
            print(_line(f"{name} #{i + 1}", f), flush=True)

    def median(name: str, figure: str) -> float | None:
        values = [f[figure] for f in figures[name] if f[figure] is not None]
        return round(statistics.median(values), 3) if values else None

    medians = {name: {fig: median(name, fig) for fig, _, _ in FIGURES} for name in chosen}
    ratios: dict[str, dict[str, Any]] = {}
    for label, a, b, figure in RATIOS:
        if a not in chosen or b not in chosen:
            continue
        rounds, spread = paired_ratios(figures[a], figures[b], figure)
        ratios[label] = {
            "of_medians": ratio(medians[a][figure], medians[b][figure]),
            "rounds": rounds,
            "range": spread,
        }
    return {
        "messages": args.messages,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "figures": figures,
        "median": medians,
        "ratios": ratios,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--workers", type=int, help="worker tasks per lane and process (default: the server's)"
    )
    parser.add_argument("--latency", type=float, default=0.05, help="simulator receipt latency (s)")
    parser.add_argument("--e2e-timeout", type=float, default=120.0)
    parser.add_argument(
        "--pg-admin-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL database to create and drop each run's database from",
    )
    parser.add_argument(
        "--setups",
        nargs="+",
        choices=list(SETUPS),
        default=list(SETUPS),
        metavar="SETUP",
        help=f"which setups to run, of: {', '.join(repr(s) for s in SETUPS)}",
    )
    args = parser.parse_args()
    result = asyncio.run(series(args))
    for name, m in result["median"].items():
        print(_line(f"median {name}", m))
    for label, r in result["ratios"].items():
        print(f"{label:<40}: {r['of_medians']}  (rounds {r['range']})")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
