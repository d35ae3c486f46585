"""Organizations and API keys through the command line, and what they do to authentication."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest
import telnyx

from signalpost.settings import Settings
from tests.conftest import sdk_client
from tests.support.server import RunningServer, free_port
from tests.support.wait import wait_until


def cli(db_url: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "signalpost.cli", *args, "--database-url", db_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_orgs_and_keys(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    cli(db_url, "db", "upgrade")  # the other commands never create a database
    out = cli(db_url, "orgs", "create", "acme")
    key = next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("api key: "))
    public = cli(db_url, "keys", "public", "--org", "acme").strip()
    assert len(base64.b64decode(public, validate=True)) == 32
    second = cli(db_url, "keys", "create", "--org", "acme").strip()
    assert second.startswith("KEY") and second != key
    listing = cli(db_url, "keys", "list", "--org", "acme")
    assert key[:10] in listing and second[:10] in listing and "revoked" not in listing
    assert "acme" in cli(db_url, "orgs", "list")

    server = RunningServer(Settings(database_url=db_url, port=free_port(), workers=0)).start()
    try:
        client = sdk_client(server, second)
        assert client.messaging_profiles.list().data == []
        assert "revoked" in cli(db_url, "keys", "revoke", second[:10])
        assert "revoked" in cli(db_url, "keys", "list", "--org", "acme")

        def refused() -> bool:
            try:
                client.messaging_profiles.list()
            except telnyx.AuthenticationError:
                return True
            return False

        wait_until(refused, 10, interval=0.2)
        assert sdk_client(server, key).messaging_profiles.list().data == []
    finally:
        server.stop()


def test_revoking_an_unknown_key_fails(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    cli(db_url, "db", "upgrade")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "signalpost.cli",
            "keys",
            "revoke",
            "nope",
            "--database-url",
            db_url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "no active key" in done.stderr


@pytest.mark.parametrize("name", ["acme"])
def test_duplicate_organization_is_refused(tmp_path: Path, name: str) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    cli(db_url, "db", "upgrade")
    cli(db_url, "orgs", "create", name)
    done = subprocess.run(
        [sys.executable, "-m", "signalpost.cli", "orgs", "create", name, "--database-url", db_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1 and "exists" in done.stderr
