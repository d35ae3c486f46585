"""Slow-receiver drill: does a webhook receiver that answers slowly hold up sending?

Starts a `signalpost serve` process on a fresh SQLite database (rate limits off, everything else as
in the sandbox), a webhook receiver that answers every POST after `--delay` seconds, and two
organizations: A, whose messaging profile sends its webhooks to that receiver, and B, without any
webhooks. It then sends `--rate` messages a second for `--seconds` seconds (every `--b-every`-th
from B, the others from A), waits until every accepted message was handed to the carrier, and
prints, per organization, the percentiles of acceptance → `sent` (the message's `received_at` to
its `sent_at`), then a JSON summary as its last line.

    .venv/bin/python bench/slow_receiver.py --rate 200 --seconds 60 --delay 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from typing import Any

import httpx

from signalpost.kit import compact

CONNECTIONS = 64


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SlowReceiver:
    """Answers every POST with 200 after `delay` seconds; counts the POSTs it received."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.received = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length:\s*(\d+)", head)[1])  # type: ignore[index]
                await reader.readexactly(length)
                self.received += 1
                await asyncio.sleep(self.delay)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.CancelledError, ConnectionError, TypeError):
            pass
        finally:
            writer.close()


async def wait_ready(base: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(f"{base}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{base} did not become ready")


async def make_sender(http: httpx.AsyncClient, key: str, number: str, hook: str | None) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    profile: dict[str, Any] = {"name": f"drill {number}", "whitelisted_destinations": ["US"]}
    if hook:
        profile["webhook_url"] = hook
    r = await http.post("/v2/messaging_profiles", json=profile, headers=headers)
    r.raise_for_status()
    r = await http.post(
        "/v2/number_orders",
        json={
            "phone_numbers": [{"phone_number": number}],
            "messaging_profile_id": r.json()["data"]["id"],
        },
        headers=headers,
    )
    r.raise_for_status()


async def drive(
    base: str, senders: list[tuple[str, str]], rate: float, seconds: float, b_every: int
) -> tuple[list[str], list[str], int]:
    """Sends at `rate`/s from `CONNECTIONS` keep-alive connections, each taking the next send of
    the schedule when it is due; the accepted ids of A and of B, and the failed requests."""
    ids: tuple[list[str], list[str]] = ([], [])
    failed = 0
    total = int(rate * seconds)
    next_send = 0
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        start = time.monotonic()

        async def sender() -> None:
            nonlocal failed, next_send
            while next_send < total:
                i = next_send
                next_send += 1
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                which = 1 if i % b_every == b_every - 1 else 0
                key, number = senders[which]
                try:
                    r = await http.post(
                        "/v2/messages",
                        json={"from": number, "to": f"+1415666{i % 10000:04d}", "text": f"d{i}"},
                        headers={"Authorization": f"Bearer {key}"},
                    )
                    r.raise_for_status()
                    ids[which].append(r.json()["data"]["id"])
                except httpx.HTTPError:
                    failed += 1

        await asyncio.gather(*(sender() for _ in range(CONNECTIONS)))
        behind = time.monotonic() - start - seconds
    if behind > 1:
        print(f"the sends ended {behind:.1f} s behind schedule", file=sys.stderr)
    return ids[0], ids[1], failed


def waits(db_path: str, message_ids: list[str]) -> tuple[list[float], int]:
    """Acceptance → `sent` of the messages sent so far (seconds), and how many are not sent yet."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        out: list[float] = []
        unsent = 0
        for start in range(0, len(message_ids), 500):
            chunk = message_ids[start : start + 500]
            rows = conn.execute(
                "SELECT received_at, sent_at FROM messages WHERE id IN "
                f"({', '.join('?' * len(chunk))})",
                [compact.uuid_bytes(i) for i in chunk],  # the stored forms (kit.compact)
            ).fetchall()
            for received, sent in rows:
                if sent is None:
                    unsent += 1
                else:
                    out.append((sent - received) / 1e6)  # microseconds since 1970
        return out, unsent
    finally:
        conn.close()


def percentiles(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    s = sorted(values)

    def pct(p: float) -> float:
        return round(s[min(len(s) - 1, int(p / 100 * len(s)))], 3)

    return {"n": len(s), "p50": pct(50), "p90": pct(90), "p99": pct(99), "max": round(s[-1], 3)}


def create_org(env: dict[str, str], cwd: str, name: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "signalpost.cli", "orgs", "create", name],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(f"orgs create {name} failed:\n{out.stderr}")
    return re.search(r"api key: (\S+)", out.stdout)[1]  # type: ignore[index]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="signalpost-drill-")
    db_path = f"{tmp}/drill.db"
    receiver = SlowReceiver(args.delay)
    await receiver.start()
    key_a = "KEYdrill" + secrets.token_hex(12)
    port = free_port()
    env = {
        **os.environ,
        "SIGNALPOST_DATABASE_URL": f"sqlite+aiosqlite:///{db_path}",
        "SIGNALPOST_PORT": str(port),
        "SIGNALPOST_API_KEY": key_a,
        "SIGNALPOST_RATE_LIMITS__ENABLED": "false",
        "SIGNALPOST_LOG_LEVEL": "error",
    }
    if args.webhook_timeout:
        env["SIGNALPOST_WEBHOOK_TIMEOUT"] = str(args.webhook_timeout)
    subprocess.run(
        [sys.executable, "-m", "signalpost.cli", "db", "upgrade"],
        env=env,
        cwd=tmp,
        capture_output=True,
        check=True,
    )
    key_b = create_org(env, tmp, "drill-b")
    server = subprocess.Popen(
        [sys.executable, "-m", "signalpost.cli", "serve"],
        env=env,
        cwd=tmp,
        stdout=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_ready(base)
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            await make_sender(http, key_a, "+13125550100", f"http://127.0.0.1:{receiver.port}/h")
            await make_sender(http, key_b, "+13125550200", None)
        senders = [(key_a, "+13125550100"), (key_b, "+13125550200")]
        ids_a, ids_b, failed = await drive(base, senders, args.rate, args.seconds, args.b_every)
        deadline = time.monotonic() + args.drain_timeout
        while True:
            a, unsent_a = waits(db_path, ids_a)
            b, unsent_b = waits(db_path, ids_b)
            if (unsent_a == 0 and unsent_b == 0) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        return {
            "rate": args.rate,
            "seconds": args.seconds,
            "receiver_delay": args.delay,
            "requests_failed": failed,
            "a_with_slow_webhooks": {**percentiles(a), "not_sent": unsent_a},
            "b_without_webhooks": {**percentiles(b), "not_sent": unsent_b},
            "webhook_posts_received": receiver.received,
        }
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        await receiver.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=200.0, help="messages per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to send")
    parser.add_argument("--delay", type=float, default=10.0, help="the receiver's answer time")
    parser.add_argument("--b-every", type=int, default=5, help="every n-th message is B's")
    parser.add_argument("--webhook-timeout", type=float, help="SIGNALPOST_WEBHOOK_TIMEOUT")
    parser.add_argument("--drain-timeout", type=float, default=300.0)
    result = asyncio.run(run(parser.parse_args()))
    for org in ("a_with_slow_webhooks", "b_without_webhooks"):
        print(f"{org}: acceptance → sent {result[org]}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
