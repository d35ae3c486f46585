"""Send-throughput benchmark: accepted messages/s, latency percentiles, end-to-end finalized/s.

Starts (unless --base-url is given) a `signalpost serve` process on a fresh SQLite database with rate
limits off, creates a messaging profile whose webhooks go to a local receiver, orders a number, then
drives `POST /v2/messages` at the given concurrency over keep-alive connections. It reports:

- accepted messages/s and request latency percentiles (p50/p90/p99) of the send endpoint;
- end to end: messages/s from the first acceptance to the last `message.finalized` webhook received;
- the same request figures for a bare ASGI echo endpoint served by uvicorn in the same run, as the
  ceiling of what this machine's HTTP stack can do;

and prints a JSON summary as its last line. It is a script, not a test: `make bench` runs it.

With `--report-storage` (on the fresh SQLite database this script starts) it also stops the server
once every message is final and its webhooks delivered, checkpoints the write-ahead log and prints
the database file's size per message, and the bytes of each table and index (SQLite's `dbstat`).

`--carrier smpp` compares the two carriers in the same run: rounds (`--rounds` each) alternate
between servers whose default carrier is the built-in simulator and servers whose default carrier
is an SMPP bind (window `--window`) to the SMSC simulator of the test suite on loopback (its
receipts after `--latency`, like the built-in simulator's), in the same process layout
(`--api-processes`, `--worker-processes`, `--taskset`); it prints every round, the medians of
each carrier, the ratios SMPP / simulator of the medians and their range over the round pairs
(bench/smpp_carrier.py), and the JSON of it all as its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from smpp_carrier import compare, smpp_settings, start_simulator

ROOT = Path(__file__).resolve().parent.parent
ECHO_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while True:
        message = await receive()
        if not message.get("more_body"):
            break
    body = b'{"data":{"ok":true}}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(url)).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


# --- a minimal keep-alive HTTP/1.1 load generator (the client must not be the bottleneck) ---------


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        lname = name.strip().lower()
        if lname == b"content-length":
            length = int(value.strip())
        elif lname == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            body += await reader.readexactly(size + 2)
        return status, body
    return status, await reader.readexactly(length)


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    ids: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def pct(p: float) -> float:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2) if lat else 0.0

        return {
            "requests": self.requests,
            "errors": self.errors,
            "seconds": round(self.elapsed, 3),
            "per_second": round(self.requests / self.elapsed, 1) if self.elapsed else 0.0,
            "latency_ms": {"p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "max": pct(1.0)},
        }


async def drive(
    host: str, port: int, path: str, bodies: list[bytes], headers: dict[str, str], concurrency: int
) -> LoadResult:
    result = LoadResult()
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())

    async def conn_loop() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                try:
                    body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                req = (
                    f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{head}"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode() + body
                t0 = time.perf_counter()
                writer.write(req)
                status, payload = await _read_response(reader)
                result.latencies.append(time.perf_counter() - t0)
                result.requests += 1
                if status != 200:
                    result.errors += 1
                    if result.errors <= 3:
                        print(f"  error {status}: {payload[:200]!r}", file=sys.stderr)
                elif payload.startswith(b'{"data":{"record_type"'):
                    start = payload.find(b'"id":"') + 6
                    result.ids.append(payload[start : payload.find(b'"', start)].decode())
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(conn_loop() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - t0
    return result


# --- webhook receiver --------------------------------------------------------------------------


class Receiver:
    """Counts `message.finalized` webhooks and when each arrived."""

    def __init__(self) -> None:
        self.finalized: dict[str, float] = {}
        self.server: asyncio.Server | None = None
        self.port = 0
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the server's connections, so that no handler is left waiting on a socket."""
        if self.server is None:
            return
        self.server.close()
        for writer in list(self._writers):
            writer.close()
        await asyncio.sleep(0.05)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                body = await reader.readexactly(length)
                if b'"message.finalized"' in body:
                    data = json.loads(body)["data"]
                    self.finalized.setdefault(data["payload"]["id"], time.perf_counter())
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


def process_cpu_seconds(pid: int | None) -> float | None:
    """User plus system CPU time of a process so far (Linux /proc), or None where unknown."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_of(pids: list[int]) -> float | None:
    """CPU seconds of all these processes together (None if any is unknown)."""
    total = 0.0
    for pid in pids:
        cpu = process_cpu_seconds(pid)
        if cpu is None:
            return None
        total += cpu
    return total


async def database_backends(url: str | None) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving the database of `url` (local server;
    nothing for SQLite, whose work is done inside the server processes)."""
    if not url or not url.startswith("postgresql"):
        return {}
    import asyncpg

    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        pids = await conn.fetch(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    found = {r["pid"]: process_cpu_seconds(r["pid"]) for r in pids}
    return {pid: cpu for pid, cpu in found.items() if cpu is not None}


def backends_cpu_between(start: dict[int, float], end: dict[int, float]) -> float:
    """CPU seconds the backends spent between two `database_backends` readings (a backend opened
    meanwhile counts from zero; one closed meanwhile is lost, which the kept pools make rare)."""
    return sum(cpu - start.get(pid, 0.0) for pid, cpu in end.items())


async def drive_all(
    targets: list[tuple[str, int]],
    path: str,
    bodies: list[bytes],
    headers: dict[str, str],
    concurrency: int,
) -> LoadResult:
    """`drive` against each API process at once, the bodies and connections dealt out evenly."""
    n = len(targets)
    parts = await asyncio.gather(
        *(
            drive(h, p, path, bodies[i::n], headers, max(1, concurrency // n))
            for i, (h, p) in enumerate(targets)
        )
    )
    total = LoadResult()
    for part in parts:
        total.requests += part.requests
        total.errors += part.errors
        total.latencies += part.latencies
        total.ids += part.ids
        total.elapsed = max(total.elapsed, part.elapsed)
    return total


async def start_servers(
    args: argparse.Namespace,
    key: str,
    tmp: str,
    procs: list[subprocess.Popen[bytes]],
    config: Path | None = None,
) -> list[str]:
    """Start the API processes (and worker processes), with the settings file `config` if any;
    their base URLs once all are ready."""
    env = {
        **os.environ,
        "SIGNALPOST_DATABASE_URL": args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.db",
        "SIGNALPOST_API_KEY": key,
        "SIGNALPOST_RATE_LIMITS__ENABLED": "false",
        "SIGNALPOST_LOG_LEVEL": "warning",
        **({"SIGNALPOST_WORKERS": str(args.workers)} if args.workers is not None else {}),
        "SIGNALPOST_SIMULATOR_LATENCY": str(args.latency),
        **({"SIGNALPOST_CONFIG": str(config)} if config else {}),
    }
    pin = ["taskset", "-c", args.taskset] if args.taskset else []
    command = [*pin, sys.executable, "-m", "signalpost.cli"]
    bases = []
    for i in range(args.api_processes):
        port = free_port()
        serve = ["serve", "--no-workers"] if args.worker_processes else ["serve"]
        procs.append(
            subprocess.Popen(
                [*command, *serve],
                env={**env, "SIGNALPOST_PORT": str(port)},
                cwd=tmp,
                stdout=subprocess.DEVNULL,
            )
        )
        bases.append(f"http://127.0.0.1:{port}/v2")
        if i == 0:  # the first one applies the migrations before the others start
            await wait_http(f"http://127.0.0.1:{port}/readyz")
    for base in bases:
        await wait_http(base.rsplit("/v2", 1)[0] + "/readyz")
    for _ in range(args.worker_processes):
        procs.append(
            subprocess.Popen([*command, "worker"], env=env, cwd=tmp, stdout=subprocess.DEVNULL)
        )
    return bases


# --- main ----------------------------------------------------------------------------------------


async def setup(base: str, key: str, hook_url: str) -> str:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
        r = await http.post(
            "/messaging_profiles",
            json={"name": "bench", "whitelisted_destinations": ["US"], "webhook_url": hook_url},
        )
        r.raise_for_status()
        profile = r.json()["data"]["id"]
        number = "+13125559" + f"{secrets.randbelow(1000):03d}"
        r = await http.post(
            "/number_orders",
            json={"phone_numbers": [{"phone_number": number}], "messaging_profile_id": profile},
        )
        r.raise_for_status()
        return number


# long: one round from start to teardown; its steps share the processes and the receiver
async def run(
    args: argparse.Namespace,
    carrier: str = "simulator",
    echo_ceiling: bool = True,
    start_together: asyncio.Barrier | None = None,
) -> dict[str, Any]:
    """One round: servers whose default carrier is `carrier` (`smpp`: a bind to an SMSC simulator
    started here), the load, the figures; and the echo ceiling when asked for.

    `start_together`: runs going on at once (separate stacks side by side) wait there after their
    warm-up, so that their measured loads start at the same moment."""
    procs: list[subprocess.Popen[bytes]] = []
    smsc: subprocess.Popen[str] | None = None
    tmp = tempfile.mkdtemp(prefix="signalpost-bench-")
    receiver = Receiver()
    await receiver.start()
    try:
        key = args.api_key or "KEYbench" + secrets.token_hex(12)
        if args.base_url:
            bases = [args.base_url.rstrip("/")]
        else:
            config = None
            if carrier == "smpp":
                smsc, smsc_port = start_simulator("--dlr-delay", str(args.latency))
                config = smpp_settings(Path(tmp), smsc_port, args.window)
            bases = await start_servers(args, key, tmp, procs, config)
        base = bases[0]
        number = await setup(base, key, f"http://127.0.0.1:{receiver.port}/hooks")
        url = httpx.URL(base)
        targets = [(httpx.URL(b).host, httpx.URL(b).port or 80) for b in bases]
        headers = {"Authorization": f"Bearer {key}"}
        # Destinations outside the simulator's +1NPA55501XX outcome numbers and the SMSC simulator's
        # …0011–0014 endings: every message is delivered after the latency (one "delivered after
        # 30 s" number, or one without a receipt, would set the end time).
        bodies = [
            json.dumps(
                {
                    "from": number,
                    "to": f"+1415666{5000 + i % 5000:04d}",
                    "text": f"bench message {i}",
                }
            ).encode()
            for i in range(args.messages)
        ]
        # Warm up (connections, caches, the SMPP bind) until the warm-up messages are final.
        warm = await drive_all(
            targets,
            url.path + "/messages",
            bodies[: args.concurrency * 2],
            headers,
            args.concurrency,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not set(warm.ids) <= set(receiver.finalized):
            await asyncio.sleep(0.05)
        receiver.finalized.clear()
        if start_together is not None:
            await start_together.wait()
        servers = [p.pid for p in procs]
        apis = servers[: args.api_processes]  # then the `worker` processes, if any
        smsc_pids = [smsc.pid] if smsc else []
        db_start = await database_backends(args.database_url)
        cpu_start = cpu_of(servers)
        api_start = cpu_of(apis)
        smsc_start = cpu_of(smsc_pids)
        t_start = time.perf_counter()
        send = await drive_all(targets, url.path + "/messages", bodies, headers, args.concurrency)
        cpu_sent = cpu_of(servers)
        accepted = set(send.ids)
        deadline = time.monotonic() + args.e2e_timeout
        while time.monotonic() < deadline and not accepted <= set(receiver.finalized):
            await asyncio.sleep(0.05)
        done = [receiver.finalized[i] for i in accepted if i in receiver.finalized]
        e2e_seconds = (max(done) - t_start) if done else 0.0
        cpu_end = cpu_of(servers)
        api_end = cpu_of(apis)
        db_cpu = backends_cpu_between(db_start, await database_backends(args.database_url))
        smsc_end = cpu_of(smsc_pids)
        storage = None
        if args.report_storage and procs:
            storage = await _storage_report(procs[0], Path(tmp) / "bench.db")
        cpu_ms = (
            round((cpu_end - cpu_start) * 1000 / len(done), 3)
            if cpu_start is not None and cpu_end is not None and done
            else None
        )

        result = {
            "carrier": carrier,
            "messages": args.messages,
            "concurrency": args.concurrency,
            "workers": args.workers,
            "api_processes": args.api_processes,
            "worker_processes": args.worker_processes,
            "send": {
                **send.summary(),
                # CPU time of the server per request while the requests ran (in-process workers
                # included, when they ran meanwhile).
                "server_cpu_ms_per_request": (
                    round((cpu_sent - cpu_start) * 1000 / len(bodies), 3)
                    if cpu_start is not None and cpu_sent is not None
                    else None
                ),
            },
            "end_to_end": {
                "finalized": len(done),
                "seconds": round(e2e_seconds, 3),
                "per_second": round(len(done) / e2e_seconds, 1) if e2e_seconds else 0.0,
                # CPU time of the server process per finalized message, from the first send to the
                # last webhook (all threads): steadier than rates on a machine whose speed varies.
                "server_cpu_ms_per_message": cpu_ms,
                # with separate `worker` processes: the API processes' share of it
                "api_cpu_ms_per_message": (
                    round((api_end - api_start) * 1000 / len(done), 3)
                    if args.worker_processes
                    and api_start is not None
                    and api_end is not None
                    and done
                    else None
                ),
                # PostgreSQL's backends for this database, and the two together (SQLite: the
                # server's alone)
                "database_cpu_ms_per_message": (
                    round(db_cpu * 1000 / len(done), 3) if done and args.database_url else None
                ),
                "total_cpu_ms_per_message": (
                    round(cpu_ms + db_cpu * 1000 / len(done), 3)
                    if cpu_ms is not None and done
                    else None
                ),
                # the SMSC simulator's (SMPP rounds): the built-in simulator's is in the servers'
                "smsc_cpu_ms_per_message": (
                    round((smsc_end - smsc_start) * 1000 / len(done), 3)
                    if smsc and smsc_start is not None and smsc_end is not None and done
                    else None
                ),
            },
            **({"storage": storage} if storage else {}),
        }
        if not echo_ceiling:
            return result
        echo = await _echo_ceiling(tmp, bodies, args.concurrency, procs)
        return {**result, "echo_ceiling": echo.summary()}
    finally:
        stopping: list[subprocess.Popen[Any]] = [*procs, *([smsc] if smsc else [])]
        for p in stopping:
            p.send_signal(signal.SIGTERM)
        for p in stopping:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        await receiver.stop()
        shutil.rmtree(tmp, ignore_errors=True)


async def _echo_ceiling(
    tmp: str, bodies: list[bytes], concurrency: int, procs: list[subprocess.Popen[bytes]]
) -> LoadResult:
    """A bare ASGI endpoint under uvicorn, driven like the server: this machine's HTTP ceiling."""
    echo_port = free_port()
    (Path(tmp) / "echo_app.py").write_text(ECHO_APP)
    procs.append(
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "echo_app:app",
                "--port",
                str(echo_port),
                "--log-level",
                "warning",
            ],
            cwd=tmp,
        )
    )
    await wait_http(f"http://127.0.0.1:{echo_port}/")
    await drive("127.0.0.1", echo_port, "/", bodies[: concurrency * 2], {}, concurrency)
    return await drive("127.0.0.1", echo_port, "/", bodies, {}, concurrency)


async def _storage_report(server: subprocess.Popen[bytes], db: Path) -> dict[str, Any]:
    """Stop the server (its jobs done), checkpoint the WAL, and measure the database file."""
    import sqlite3

    await _wait_jobs_done(db)
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=30)
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        count = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        rows = conn.execute(
            "SELECT name, sum(pgsize), sum(payload) FROM dbstat GROUP BY name ORDER BY 2 DESC"
        ).fetchall()
        # What a message adds: its row, its webhook events and attempts, and their indexes
        # (without the pages every table and index of an empty schema takes).
        own = conn.execute(
            "SELECT sum(d.pgsize) FROM dbstat d JOIN sqlite_schema s ON s.name = d.name"
            " WHERE s.tbl_name IN ('messages', 'webhook_events', 'webhook_attempts')"
        ).fetchone()[0]
    finally:
        conn.close()
    size = db.stat().st_size
    return {
        "messages": count,
        "file_bytes": size,
        "bytes_per_message": round(size / count, 1) if count else None,
        "message_rows_bytes_per_message": round(own / count, 1) if count else None,
        "free_pages_bytes": free * page,
        "objects": {name: {"bytes": b, "payload": p} for name, b, p in rows},
    }


async def _wait_jobs_done(db: Path, timeout: float = 60.0) -> None:
    """Until no job is left queued or running (the last webhooks delivered)."""
    import sqlite3

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = sqlite3.connect(db, timeout=10)
        try:
            left = conn.execute(
                "SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')"
            ).fetchone()[0]
        finally:
            conn.close()
        if left == 0:
            return
        await asyncio.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--workers",
        type=int,
        help="worker tasks per lane of each process that runs workers (default: the server's)",
    )
    parser.add_argument("--latency", type=float, default=0.05, help="simulator receipt latency (s)")
    parser.add_argument("--base-url", help="benchmark a running server instead (…/v2)")
    parser.add_argument("--api-key", help="API key of the running server")
    parser.add_argument("--database-url", help="database for the server this script starts")
    parser.add_argument("--e2e-timeout", type=float, default=120.0)
    parser.add_argument(
        "--api-processes",
        type=int,
        default=1,
        help="API processes (`serve`, each on its own port; with --worker-processes, "
        "`serve --no-workers`); the load is spread over them",
    )
    parser.add_argument(
        "--worker-processes",
        type=int,
        default=0,
        help="separate `worker` processes (0: the API processes run the workers in-process)",
    )
    parser.add_argument(
        "--taskset", help="CPU list to pin the server processes to (taskset -c), e.g. 0"
    )
    parser.add_argument(
        "--report-storage",
        action="store_true",
        help="print the SQLite database's bytes per message at the end (fresh database only)",
    )
    parser.add_argument(
        "--carrier",
        choices=["simulator", "smpp"],
        default="simulator",
        help="smpp: alternate rounds of the built-in simulator and an SMPP carrier, and compare",
    )
    parser.add_argument("--window", type=int, default=10, help="SMPP window of the bind")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per carrier (--carrier smpp)")
    args = parser.parse_args()
    if args.report_storage and (args.base_url or args.database_url):
        parser.error("--report-storage measures the fresh SQLite database this script starts")
    if args.carrier == "smpp":
        if args.base_url:
            parser.error("--carrier smpp starts its own servers; drop --base-url")
        comparison = asyncio.run(compare(run, args))
        for name, m in comparison["median"].items():
            print(f"median {name:<9}: {json.dumps(m)}")
        for name, r in comparison["smpp_vs_simulator"].items():
            print(f"smpp / simulator {name:<26}: {json.dumps(r)}")
        print(json.dumps(comparison))
        return
    summary = asyncio.run(run(args))
    s, e, c = summary["send"], summary["end_to_end"], summary["echo_ceiling"]
    print(
        f"send endpoint : {s['per_second']:>8.1f} accepted/s   p50 {s['latency_ms']['p50']} ms   "
        f"p90 {s['latency_ms']['p90']} ms   p99 {s['latency_ms']['p99']} ms   errors {s['errors']}"
    )
    print(
        f"end to end    : {e['per_second']:>8.1f} finalized/s ({e['finalized']}/{summary['messages']} in {e['seconds']} s)"
    )
    print(
        f"echo ceiling  : {c['per_second']:>8.1f} requests/s   p50 {c['latency_ms']['p50']} ms   "
        f"p99 {c['latency_ms']['p99']} ms"
    )
    if "storage" in summary:
        st = summary["storage"]
        print(
            f"storage       : {st['bytes_per_message']} bytes per message "
            f"({st['file_bytes']} bytes, {st['messages']} messages, "
            f"{st['free_pages_bytes']} bytes free); messages, webhook events and attempts with "
            f"their indexes: {st['message_rows_bytes_per_message']} bytes per message"
        )
        for name, o in list(st["objects"].items())[:14]:
            print(f"  {name:<44} {o['bytes']:>10} bytes  ({o['payload']} payload)")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
