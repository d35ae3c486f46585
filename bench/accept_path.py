"""The accept path alone: CPU per message of `POST /v2/messages`, without HTTP and without workers.

Creates the application in this process on a fresh SQLite database (workers off, rate limits off),
sets up a messaging profile and a number through the API, then calls the ASGI application directly
with `--messages` send requests, `--concurrency` at a time, to distinct destinations. It prints the
process's CPU time per accepted message and a JSON summary as its last line.

Without sockets, an HTTP server and a client sharing the machine, the figure is much steadier than
`send_throughput.py`'s; under valgrind it becomes an instruction count, the same from run to run:

    valgrind --tool=callgrind --instr-atstart=no python bench/accept_path.py --callgrind

(`--callgrind` switches instrumentation on for the measured requests only; divide the `I refs`
valgrind prints by the messages accepted.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import tempfile
import time
from typing import Any

import httpx

from signalpost.app import create_app
from signalpost.settings import RateLimits, Settings


async def run(messages: int, concurrency: int, callgrind: bool) -> dict[str, Any]:
    key = "KEYbench" + secrets.token_hex(8)
    with tempfile.TemporaryDirectory(prefix="signalpost-accept-") as tmp:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp}/accept.db",
            api_key=key,
            workers=0,
            rate_limits=RateLimits(enabled=False),
            log_level="warning",
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            number = await _setup(app, key)
            headers = [
                (b"host", b"bench"),
                (b"authorization", f"Bearer {key}".encode()),
                (b"content-type", b"application/json"),
            ]
            bodies = [
                json.dumps(
                    {
                        "from": number,
                        "to": f"+1415{6660000 + (i * 7919) % 3000000:07d}",
                        "text": f"bench message {i}",
                    }
                ).encode()
                for i in range(messages + 2 * concurrency)
            ]
            accepted = 0

            async def one(body: bytes) -> None:
                nonlocal accepted
                scope = {
                    "type": "http",
                    "asgi": {"version": "3.0"},
                    "http_version": "1.1",
                    "method": "POST",
                    "scheme": "http",
                    "path": "/v2/messages",
                    "raw_path": b"/v2/messages",
                    "query_string": b"",
                    "root_path": "",
                    "headers": [*headers, (b"content-length", str(len(body)).encode())],
                    "client": ("127.0.0.1", 40000),
                    "server": ("127.0.0.1", 8080),
                }
                messages_in = [{"type": "http.request", "body": body, "more_body": False}]

                async def receive() -> dict[str, Any]:
                    if messages_in:
                        return messages_in.pop()
                    await asyncio.Event().wait()  # no disconnect while answering
                    raise AssertionError("unreachable")

                async def send(message: dict[str, Any]) -> None:
                    nonlocal accepted
                    if message["type"] == "http.response.start" and message["status"] == 200:
                        accepted += 1

                await app(scope, receive, send)

            async def client(queue: list[bytes]) -> None:
                while queue:
                    await one(queue.pop())

            warm = bodies[: 2 * concurrency]
            await asyncio.gather(*(one(b) for b in warm))  # caches, statements, the first page
            queue = bodies[2 * concurrency :]
            accepted = 0
            if callgrind:
                _callgrind("on")
            cpu0, wall0 = time.process_time(), time.perf_counter()
            await asyncio.gather(*(client(queue) for _ in range(concurrency)))
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            if callgrind:
                _callgrind("off")
    return {
        "messages": messages,
        "accepted": accepted,
        "cpu_us_per_message": round(cpu / max(accepted, 1) * 1e6, 1),
        "per_second": round(accepted / wall, 1),
    }


async def _setup(app: Any, key: str) -> str:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://bench/v2", headers={"Authorization": f"Bearer {key}"}
    ) as http:
        r = await http.post(
            "/messaging_profiles",
            json={"name": "bench", "whitelisted_destinations": ["US"]},
        )
        r.raise_for_status()
        number = "+13125559" + f"{secrets.randbelow(1000):03d}"
        r = await http.post(
            "/number_orders",
            json={
                "phone_numbers": [{"phone_number": number}],
                "messaging_profile_id": r.json()["data"]["id"],
            },
        )
        r.raise_for_status()
        return number


def _callgrind(state: str) -> None:
    subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--callgrind", action="store_true", help="instrument only the measured requests"
    )
    args = parser.parse_args()
    summary = asyncio.run(run(args.messages, args.concurrency, args.callgrind))
    print(
        f"accept path: {summary['cpu_us_per_message']} µs CPU per message, "
        f"{summary['per_second']} accepted/s ({summary['accepted']}/{args.messages})"
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
