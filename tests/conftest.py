"""Shared fixtures: a real server per test module on SQLite and PostgreSQL, the official SDK as client,
a real HTTP webhook receiver, and a fresh organization per test."""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from telnyx import Telnyx

from signalpost.accounts.service import Organization
from signalpost.settings import Settings
from tests.support.messaging import Sender, make_sender
from tests.support.receiver import WebhookReceiver
from tests.support.server import RunningServer, free_port

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


async def _pg_admin(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("+asyncpg", ""), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _pg_base_url() -> tuple[str | None, str]:
    """The PostgreSQL server to create test databases on, or None and the reason to skip."""
    url = os.environ.get("SIGNALPOST_TEST_POSTGRES_URL")
    candidate = url or DEFAULT_PG
    try:
        asyncio.run(_pg_admin(candidate, "SELECT 1"))
    except Exception as exc:
        if url:
            raise RuntimeError(
                f"SIGNALPOST_TEST_POSTGRES_URL={url} is not reachable: {exc}"
            ) from exc
        return (
            None,
            f"PostgreSQL not reachable at {DEFAULT_PG} and SIGNALPOST_TEST_POSTGRES_URL unset ({exc})",
        )
    return candidate, ""


_PG: tuple[str | None, str] | None = None


def pg_server_url() -> str:
    """Skips the calling test (visibly) when no PostgreSQL server is available."""
    global _PG
    if _PG is None:
        _PG = _pg_base_url()
    url, reason = _PG
    if url is None:
        pytest.skip(reason)
    return url


def create_pg_database() -> tuple[str, str]:
    """A fresh, empty PostgreSQL database: (its URL, the admin URL to drop it with)."""
    base = pg_server_url()
    name = f"signalpost_t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(base, f'CREATE DATABASE "{name}"'))
    prefix = base.rsplit("/", 1)[0]
    return f"{prefix}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1), name


def drop_pg_database(name: str) -> None:
    base = pg_server_url()
    asyncio.run(_pg_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh database per test module and backend."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("db") / "signalpost.db"
        yield f"sqlite+aiosqlite:///{path}"
        return
    url, name = create_pg_database()
    yield url
    drop_pg_database(name)


@pytest.fixture(scope="module")
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to change the server's settings."""
    return {}


def test_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "host": "127.0.0.1",
        "port": free_port(),
        "workers": 2,
        "worker_poll_interval": 0.05,
        "simulator_latency": 0.01,
        "webhook_timeout": 1.0,
        "webhook_retry_base": 0.05,
        "schedule_min_lead_seconds": 0,
        "rate_limits": {"enabled": False},
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="module")
def server(database_url: str, settings_overrides: dict[str, Any]) -> Iterator[RunningServer]:
    running = RunningServer(test_settings(database_url, **settings_overrides)).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver().start()
    yield r
    r.stop()


def sdk_client(server: RunningServer, api_key: str, public_key: str | None = None) -> Telnyx:
    return Telnyx(
        api_key=api_key,
        base_url=f"{server.base_url}/v2",
        public_key=public_key,
        max_retries=0,
        _strict_response_validation=True,
    )


@dataclass
class Account:
    """One organization on the test server, with an SDK client holding its key."""

    org: Organization
    api_key: str
    client: Telnyx


_org_counter = itertools.count(1)


@pytest.fixture
def account(server: RunningServer) -> Iterator[Account]:
    org, key = server.new_organization(f"org-{next(_org_counter)}-{uuid.uuid4().hex[:6]}")
    client = sdk_client(server, key, org.public_key)
    yield Account(org, key, client)
    client.close()


@pytest.fixture
def other_account(server: RunningServer) -> Iterator[Account]:
    org, key = server.new_organization(f"other-{next(_org_counter)}-{uuid.uuid4().hex[:6]}")
    client = sdk_client(server, key, org.public_key)
    yield Account(org, key, client)
    client.close()


@pytest.fixture
def client(account: Account) -> Telnyx:
    return account.client


_number_counter = itertools.count(1)


def unique_number(area: str = "312") -> str:
    """A valid-looking US long code that no other test uses (exchange 2xx–9xx, never 555)."""
    n = next(_number_counter) + os.getpid() % 1000 * 7919
    exchange = 200 + (n // 10000) % 700
    if exchange == 555:
        exchange = 556
    return f"+1{area}{exchange:03d}{n % 10000:04d}"


@pytest.fixture
def sender(client: Telnyx, receiver: WebhookReceiver) -> Sender:
    """A messaging profile whose webhooks go to `receiver`, with a fresh number on it."""
    return make_sender(client, receiver, unique_number())


@pytest.fixture(params=BACKENDS)
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database per test and backend (migrations and process tests start there)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/signalpost.db"
        return
    url, name = create_pg_database()
    yield url
    drop_pg_database(name)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Figures tests recorded with `record_property("kill_drill", …)`, shown after every run
    (CI runs without -s: the counts of the kill -9 drill must be visible there too)."""
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            for name, value in getattr(report, "user_properties", []):
                if name == "kill_drill":
                    terminalreporter.write_line(f"{report.nodeid} ({outcome}): {value}")
