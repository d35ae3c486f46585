"""A worker process killed while batches of sends, receipts and webhook deliveries are in flight:
after another worker takes over, every message is final exactly once, each has exactly one
`message.sent` and one `message.finalized` event, every event is delivered (redeliveries repeat
its id), and no job is left behind or failed."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from signalpost.kit.db import Database
from signalpost.models import jobs, messages, webhook_attempts, webhook_events
from tests.support.processes import crash_test_env, spawn, stop, wait_ready
from tests.support.receiver import WebhookReceiver, complete_events
from tests.support.server import free_port
from tests.support.wait import wait_until

MESSAGES = 240


def test_a_worker_killed_mid_batch_loses_and_repeats_nothing(
    empty_db_url: str, tmp_path: Path
) -> None:
    receiver = WebhookReceiver().start()
    receiver.behave("/hooks", status=200, delay=0.02)  # webhook batches stay in flight a while
    port = free_port()
    key = "KEYbatch" + uuid.uuid4().hex
    env = crash_test_env(empty_db_url, port, key, simulator_latency="0.2")
    api = spawn(["serve", "--no-workers"], env, tmp_path)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, tmp_path)
        ids = asyncio.run(_send_all(base, key, receiver.url("/hooks")))
        assert len(ids) == MESSAGES
        # A backlog: the worker claims big batches of each kind.
        workers.append(spawn(["worker", "--count", "2"], env, tmp_path))
        wait_until(lambda: len(receiver.on("/hooks")) >= 60, 60)
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(10)
        assert len(complete_events(receiver.on("/hooks"))) < 2 * MESSAGES  # killed mid-way
        workers.append(spawn(["worker", "--count", "2"], env, tmp_path))

        state = asyncio.run(_wait_settled(empty_db_url, ids))
        assert state["statuses"] == {"delivered": MESSAGES}
        assert state["events"] == {
            ("message.sent", 1): MESSAGES,
            ("message.finalized", 1): MESSAGES,
        }
        assert state["event_statuses"] == {"delivered": 2 * MESSAGES}
        # A POST repeated after the crash is recorded once; each event succeeded once. (A slow
        # answer may have cost an event a failed attempt before: at-least-once, as designed.)
        assert state["repeated_attempts"] == 0
        assert state["successes"] == [1]
        assert state["jobs"] == 0

        # What the receiver saw: each event id at least once, and no second id for one change.
        stored = state["event_ids"]
        seen: dict[tuple[str, str], set[str]] = defaultdict(set)
        for data in complete_events(receiver.on("/hooks")):
            seen[(data["payload"]["id"], data["event_type"])].add(data["id"])
        assert {k: {v} for k, v in stored.items()} == dict(seen)
    finally:
        stop([*workers, api])
        receiver.stop()


async def _send_all(base: str, key: str, hook_url: str) -> list[str]:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=f"{base}/v2", headers=headers, timeout=30) as http:
        r = await http.post(
            "/messaging_profiles",
            json={"name": "batch", "whitelisted_destinations": ["US"], "webhook_url": hook_url},
        )
        r.raise_for_status()
        profile = r.json()["data"]["id"]
        r = await http.post(
            "/number_orders",
            json={
                "phone_numbers": [{"phone_number": "+13125557100"}],
                "messaging_profile_id": profile,
            },
        )
        r.raise_for_status()
        sem = asyncio.Semaphore(16)

        async def send(i: int) -> str:
            async with sem:
                r = await http.post(
                    "/messages",
                    json={"from": "+13125557100", "to": f"+1415666{i:04d}", "text": f"b{i}"},
                )
                r.raise_for_status()
                return str(r.json()["data"]["id"])

        return list(await asyncio.gather(*(send(i) for i in range(MESSAGES))))


async def _wait_settled(url: str, ids: list[str], timeout: float = 90) -> dict[str, Any]:
    """The database once every message is final, every event finished and no job is left."""
    db = Database(url)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            state = await _state(db, ids)
            settled = (
                sum(state["event_statuses"].values()) == 2 * MESSAGES
                and "pending" not in state["event_statuses"]
                and state["jobs"] == 0
            )
            if settled or loop.time() > deadline:
                return state
            await asyncio.sleep(0.2)
    finally:
        await db.dispose()


async def _state(db: Database, ids: list[str]) -> dict[str, Any]:
    async with db.transaction() as uow:
        c = uow.conn
        statuses = dict(
            (
                await c.execute(
                    select(messages.c.to_status, func.count())
                    .where(messages.c.id.in_(ids))
                    .group_by(messages.c.to_status)
                )
            ).all()
        )
        rows = (
            await c.execute(
                select(
                    webhook_events.c.id,
                    webhook_events.c.message_id,
                    webhook_events.c.event_type,
                    webhook_events.c.status,
                ).where(webhook_events.c.message_id.in_(ids))
            )
        ).all()
        a = webhook_attempts.c
        repeated = (
            await c.execute(
                select(func.count()).select_from(
                    select(a.event_id, a.attempt)
                    .group_by(a.event_id, a.attempt)
                    .having(func.count() > 1)
                    .subquery()
                )
            )
        ).scalar_one()
        successes = (
            await c.execute(
                select(a.event_id, func.count())
                .where(a.status_code >= 200, a.status_code < 300)
                .group_by(a.event_id)
            )
        ).all()
        left = (await c.execute(select(func.count()).select_from(jobs))).scalar_one()
    counts: dict[tuple[str, str], int] = defaultdict(int)
    event_ids: dict[tuple[str, str], str] = {}
    event_statuses: dict[str, int] = defaultdict(int)
    for event_id, message_id, event_type, status in rows:
        counts[(message_id, event_type)] += 1
        event_ids[(message_id, event_type)] = event_id
        event_statuses[status] += 1
    events: dict[tuple[str, int], int] = defaultdict(int)
    for (_, event_type), n in counts.items():
        events[(event_type, n)] += 1
    return {
        "statuses": statuses,
        "events": dict(events),
        "event_statuses": dict(event_statuses),
        "event_ids": event_ids,
        "repeated_attempts": int(repeated),
        "successes": sorted({n for _, n in successes}),
        "jobs": int(left),
    }
