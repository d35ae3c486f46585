"""Two `worker` processes on PostgreSQL with one configured SMPP bind: only one holds it; killed
(kill -9) under load, the other takes it over within seconds, and every accepted message is
delivered. The simulator's log counts the submits per message: none lost, and repeats only within
the documented window (the send batch the dead holder had in flight)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from telnyx import Telnyx

from signalpost.kit.db import Database
from signalpost.models import smpp_binds
from tests.conftest import create_pg_database, drop_pg_database
from tests.support.processes import crash_test_env, spawn, stop, wait_ready
from tests.support.server import free_port
from tests.support.smsc import SmscSim
from tests.support.wait import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

FINAL = {"delivered", "delivery_failed", "delivery_unconfirmed", "sending_failed", "expired"}
N = 200
SEND_BATCH = 200  # messages.jobs.BATCH_SIZE: what a dead holder may have had in flight


def _binds(url: str) -> list[Any]:
    async def go() -> list[Any]:
        db = Database(url)
        try:
            async with db.transaction() as uow:
                return list((await uow.conn.execute(select(smpp_binds))).mappings())
        finally:
            await db.dispose()

    return asyncio.run(go())


def _holders(url: str) -> list[int]:
    """The pids of the processes holding a bound bind."""
    return [
        int(r["holder"].split(":")[1]) for r in _binds(url) if r["state"] == "bound" and r["holder"]
    ]


def _env(url: str, port: int, key: str, smsc_port: int) -> dict[str, str]:
    carriers = [
        {
            "name": "upstream",
            "kind": "smpp",
            "binds": [{"host": "127.0.0.1", "port": smsc_port, "system_id": "sp", "window": 10}],
        }
    ]
    return crash_test_env(
        url,
        port,
        key,
        carriers=json.dumps(carriers),
        default_carrier="upstream",
        smpp_lease_seconds="2",
    )


def test_bind_is_held_once_and_taken_over_after_kill_9(tmp_path: Path) -> None:
    url, name = create_pg_database()
    sim = SmscSim("--dlr-delay", "0.05", "--resp-delay", "0.005")
    port = free_port()
    key = "KEYsmpp" + uuid.uuid4().hex
    env = _env(url, port, key, sim.port)
    api = spawn(["serve", "--no-workers"], env, tmp_path)
    workers: dict[int, subprocess.Popen[bytes]] = {}
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, tmp_path)
        for _ in range(2):
            p = spawn(["worker", "--count", "1"], env, tmp_path)
            workers[p.pid] = p
        (holder_pid,) = wait_until(lambda: _holders(url), 30)
        assert holder_pid in workers
        assert len(sim.records("bind")) == 1  # the other worker never bound

        client = Telnyx(
            api_key=key, base_url=f"{base}/v2", max_retries=0, _strict_response_validation=True
        )
        profile = client.messaging_profiles.create(
            name="smpp", whitelisted_destinations=["US"]
        ).data
        assert profile is not None and profile.id
        client.number_orders.create(
            phone_numbers=[{"phone_number": "+13125557100"}], messaging_profile_id=profile.id
        )
        ids: dict[str, str] = {}
        takeover = 0.0
        for i in range(N):
            to = f"+1415777{1000 + i:04d}"  # (no magic ending of the simulator)
            msg = client.messages.send(from_="+13125557100", to=to, text=f"load {i}").data
            assert msg is not None and msg.id
            ids[msg.id] = to
            if i == N // 3:
                wait_until(lambda: len(sim.submits()) >= 20, 30)
                workers[holder_pid].send_signal(signal.SIGKILL)
                workers[holder_pid].wait(10)
                killed_at = time.monotonic()
                wait_until(lambda: [p for p in _holders(url) if p != holder_pid], 20, 0.1)
                takeover = time.monotonic() - killed_at
        assert takeover < 6, takeover  # lease 2 s, renewed every 2/3 s
        assert len(sim.records("bind")) == 2

        def statuses() -> Counter[str]:
            return Counter(
                client.messages.retrieve(i).data.to[0].status  # type: ignore[union-attr,index]
                for i in ids
            )

        wait_until(lambda: set(statuses()) <= FINAL, 90, interval=0.5)
        assert statuses() == {"delivered": N}
        per_dst = Counter(s["dst"] for s in sim.submits() if s["status"] == 0)
        missing = [to for to in ids.values() if per_dst[to[1:]] == 0]
        repeated = {dst: n for dst, n in per_dst.items() if n > 1}
        assert not missing
        assert len(repeated) <= SEND_BATCH, repeated
        print(
            f"takeover {takeover:.1f}s; submits {sum(per_dst.values())} for {N}; repeated {len(repeated)}"
        )
    finally:
        stop([*workers.values(), api])
        sim.close()
        drop_pg_database(name)
