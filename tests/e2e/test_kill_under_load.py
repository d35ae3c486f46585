"""kill -9 under load on PostgreSQL, three times in one run: API processes (`serve`, with their
in-process workers) and `worker` processes die mid-load and are started again, while a client keeps
sending through whichever API process answers. Afterwards every accepted message has reached a final
state exactly once (one `message.sent` and one `message.finalized` event each), no webhook event is
lost (each delivered and seen by the receiver), and every duplicate POST repeats its event's id. The
counts are printed and recorded (`record_property`; the terminal summary shows them)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from signalpost.kit.db import Database
from signalpost.models import jobs, messages, webhook_events
from tests.conftest import create_pg_database, drop_pg_database
from tests.support.processes import crash_test_env, spawn, stop, wait_ready
from tests.support.receiver import WebhookReceiver, complete_events
from tests.support.server import free_port

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ROUNDS = 3
RATE = 15.0  # messages/s
SENDERS = 8
ROUND_SECONDS = 3.0  # load between kills (and after the last)
FINAL = {"delivered", "delivery_failed", "delivery_unconfirmed", "sending_failed", "expired"}


@pytest.fixture
def pg_url() -> Iterator[str]:
    url, name = create_pg_database()
    yield url
    drop_pg_database(name)


class Cluster:
    """Two API processes (with in-process workers) and one worker process on one database."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.cwd = cwd
        self.ports = [free_port(), free_port()]
        self.apis: list[subprocess.Popen[bytes]] = [self._serve(p) for p in self.ports]
        self.workers: list[subprocess.Popen[bytes]] = [self._worker()]
        self.dead: list[subprocess.Popen[bytes]] = []
        self.kills = 0

    def _serve(self, port: int) -> subprocess.Popen[bytes]:
        return spawn(["serve", "--port", str(port)], self.env, self.cwd)

    def _worker(self) -> subprocess.Popen[bytes]:
        return spawn(["worker", "--count", "2"], self.env, self.cwd)

    def bases(self) -> list[str]:
        return [f"http://127.0.0.1:{p}" for p in self.ports]

    def kill_and_restart(self, round_: int) -> str:
        """SIGKILL one API process (alternating) and the worker process; start both again.
        Returns the restarted API process's address."""
        i = round_ % len(self.apis)
        for proc in (self.apis[i], self.workers[-1]):
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            self.dead.append(proc)
            self.kills += 1
        self.apis[i] = self._serve(self.ports[i])
        self.workers.append(self._worker())
        return self.bases()[i]

    def all(self) -> list[subprocess.Popen[bytes]]:
        return [*self.apis, *self.workers]


async def _load(cluster: Cluster, key: str, number: str, stop_at: list[float]) -> dict[str, Any]:
    """Sends at about `RATE` from `SENDERS` clients until `stop_at[0]`, each message through
    whichever API process answers (a load balancer's part)."""
    accepted: list[str] = []
    unanswered = 0
    scheduled = 0
    headers = {"Authorization": f"Bearer {key}"}
    start = time.monotonic()

    async def sender(http: httpx.AsyncClient) -> None:
        nonlocal unanswered, scheduled
        while time.monotonic() < stop_at[0]:
            i = scheduled
            scheduled += 1
            delay = start + i / RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            body = {"from": number, "to": f"+1415888{i % 10000:04d}", "text": f"k{i}"}
            for attempt in range(20):
                base = cluster.bases()[(i + attempt) % len(cluster.ports)]
                try:
                    r = await http.post(f"{base}/v2/messages", json=body)
                except httpx.HTTPError:
                    # Refused (the process is dead), or cut off mid-request: the message may have
                    # been accepted all the same; the database says (checked at the end).
                    unanswered += 1
                    await asyncio.sleep(0.05)
                    continue
                r.raise_for_status()
                accepted.append(r.json()["data"]["id"])
                break

    async with httpx.AsyncClient(headers=headers, timeout=10) as http:
        await asyncio.gather(*(sender(http) for _ in range(SENDERS)))
    return {"accepted": accepted, "unanswered": unanswered}


async def _drive(cluster: Cluster, key: str, number: str) -> dict[str, Any]:
    stop_at = [float("inf")]
    started = time.monotonic()
    load = asyncio.create_task(_load(cluster, key, number, stop_at))
    for round_ in range(ROUNDS):
        await asyncio.sleep(ROUND_SECONDS)  # load runs meanwhile (the interval between kills)
        restarted = cluster.kill_and_restart(round_)
        # The next kill comes once the restarted API process serves again (one always does).
        await asyncio.to_thread(wait_ready, restarted, cluster.cwd, 40)
        print(f"round {round_}: restarted at {time.monotonic() - started:.1f} s")
    stop_at[0] = time.monotonic() + ROUND_SECONDS
    return await load


async def _settled(url: str, org_messages: set[str], timeout: float = 60) -> dict[str, Any]:
    """The database once every message is final, every event finished and no job is left."""
    db = Database(url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            state = await _state(db)
            done = (
                state["ids"] >= org_messages
                and all(s in FINAL for s in state["statuses"])
                and "pending" not in state["event_statuses"]
                and state["jobs"] == 0
            )
            if done or time.monotonic() > deadline:
                return state
            await asyncio.sleep(0.3)
    finally:
        await db.dispose()


async def _state(db: Database) -> dict[str, Any]:
    async with db.transaction() as uow:
        c = uow.conn
        rows = (await c.execute(select(messages.c.id, messages.c.to_status))).all()
        events = (
            await c.execute(
                select(
                    webhook_events.c.id,
                    webhook_events.c.message_id,
                    webhook_events.c.event_type,
                    webhook_events.c.status,
                )
            )
        ).all()
        left = (await c.execute(select(func.count()).select_from(jobs))).scalar_one()
    statuses: dict[str, int] = defaultdict(int)
    for _, status in rows:
        statuses[status] += 1
    event_statuses: dict[str, int] = defaultdict(int)
    per_message: dict[tuple[str, str], list[str]] = defaultdict(list)
    for event_id, message_id, event_type, status in events:
        event_statuses[status] += 1
        per_message[(message_id, event_type)].append(event_id)
    return {
        "ids": {r[0] for r in rows},
        "statuses": dict(statuses),
        "event_statuses": dict(event_statuses),
        "events": dict(per_message),
        "jobs": int(left),
    }


def test_kill_9_of_api_and_worker_processes_under_load_loses_and_repeats_nothing(
    pg_url: str, tmp_path: Path, record_property: Any
) -> None:
    receiver = WebhookReceiver().start()
    key = "KEYkill" + uuid.uuid4().hex
    env = crash_test_env(pg_url, 0, key, simulator_latency="0.2")
    cluster = Cluster(env, tmp_path)
    try:
        for base in cluster.bases():
            wait_ready(base, cwd=tmp_path, timeout=40)
        client = httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=10)
        base = cluster.bases()[0]
        r = client.post(
            f"{base}/v2/messaging_profiles",
            json={
                "name": "kill",
                "whitelisted_destinations": ["US"],
                "webhook_url": receiver.url(),
            },
        )
        r.raise_for_status()
        number = "+13125557400"
        client.post(
            f"{base}/v2/number_orders",
            json={
                "phone_numbers": [{"phone_number": number}],
                "messaging_profile_id": r.json()["data"]["id"],
            },
        ).raise_for_status()

        t0 = time.monotonic()
        load = asyncio.run(_drive(cluster, key, number))
        accepted = set(load["accepted"])
        t1 = time.monotonic()
        state = asyncio.run(_settled(pg_url, accepted))
        print(f"load {t1 - t0:.1f} s, settling {time.monotonic() - t1:.1f} s")
        stored = state["ids"]
        seen: dict[str, set[str]] = defaultdict(set)  # (message id, type) → event ids received
        posts: dict[str, int] = defaultdict(int)
        for data in complete_events(receiver.on("/hooks")):
            seen[f"{data['payload']['id']} {data['event_type']}"].add(data["id"])
            posts[data["id"]] += 1
        counts = {
            "kills": cluster.kills,
            "accepted": len(accepted),
            "unanswered_requests": load["unanswered"],
            "stored_messages": len(stored),
            "final": sum(n for s, n in state["statuses"].items() if s in FINAL),
            "statuses": state["statuses"],
            "events": sum(len(v) for v in state["events"].values()),
            "event_statuses": state["event_statuses"],
            "webhook_posts": sum(posts.values()),
            "duplicate_posts": sum(n - 1 for n in posts.values()),
            "jobs_left": state["jobs"],
        }
        record_property("kill_drill", counts)
        print(f"kill -9 drill: {counts}")

        assert cluster.kills == 2 * ROUNDS
        assert accepted and accepted <= stored, counts
        assert counts["final"] == len(stored), counts
        for mid in stored:  # a final state exactly once: one event of each kind per message
            assert len(state["events"].get((mid, "message.sent"), [])) == 1, (mid, counts)
            assert len(state["events"].get((mid, "message.finalized"), [])) == 1, (mid, counts)
        assert state["event_statuses"] == {"delivered": 2 * len(stored)}, counts
        assert state["jobs"] == 0, counts
        # No event lost: the receiver saw every stored event; duplicates repeat its id.
        for (mid, event_type), [event_id] in state["events"].items():
            assert seen[f"{mid} {event_type}"] == {event_id}, (mid, event_type, counts)
    finally:
        stop([*cluster.all(), *[p for p in cluster.dead if p.poll() is None]])
        receiver.stop()
