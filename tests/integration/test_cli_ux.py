"""The command line finds the database as `serve` does and says which, never creates one by
accident, finds the server's address as `serve` announces it and names it in errors, prints aligned
tables, readable validation errors, marks required options, and `send` fails with the message."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from signalpost.cli import app
from tests.conftest import Account, unique_number
from tests.support.messaging import Sender
from tests.support.server import RunningServer

# The variables a developer's shell may hold that would change what the commands find.
CLEAN = {
    name: None
    for name in os.environ
    if name.startswith(("SIGNALPOST_", "TELNYX_")) or name == "COLUMNS"
}


def run(*args: str, **env: str | None) -> Result:
    return CliRunner().invoke(app, list(args), env={**CLEAN, **env})


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the database -----------------------------------------------------------------------------


def test_a_missing_database_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.db"
    for args in (["orgs", "list"], ["keys", "create"], ["numbers", "list"], ["profiles", "list"]):
        result = run(*args, "--database-url", f"sqlite+aiosqlite:///{path}")
        assert result.exit_code == 1, result.output
        assert f"no database file: sqlite+aiosqlite:///{path} (--database-url)" in result.stderr
        assert "signalpost db upgrade" in result.stderr
        assert not path.exists()


def test_an_empty_database_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    result = run("orgs", "list", SIGNALPOST_DATABASE_URL=f"sqlite+aiosqlite:///{path}")
    assert result.exit_code == 1
    assert "has no signalpost schema" in result.stderr
    assert "(SIGNALPOST_DATABASE_URL)" in result.stderr
    assert path.read_bytes() == b""


def test_the_database_comes_from_the_same_sources_as_serve(tmp_path: Path) -> None:
    db = tmp_path / "from-config.db"
    config = tmp_path / "signalpost.toml"
    config.write_text(f'database_url = "sqlite+aiosqlite:///{db}"\n')
    created = run("db", "upgrade", SIGNALPOST_CONFIG=str(config))
    assert created.exit_code == 0, created.output
    assert f"database: sqlite+aiosqlite:///{db} (config file {config})" in created.stderr
    listed = run("orgs", "list", SIGNALPOST_CONFIG=str(config))
    assert listed.exit_code == 0, listed.output
    assert f"database: sqlite+aiosqlite:///{db} (config file {config})" in listed.stderr
    header = listed.stdout.splitlines()[0].split()
    assert header == ["ID", "NAME", "CREATED"]
    assert "default" in listed.stdout  # the organization the first start made
    # The environment beats the file, as for `serve`.
    other = tmp_path / "from-env.db"
    env_url = f"sqlite+aiosqlite:///{other}"
    refused = run("orgs", "list", SIGNALPOST_CONFIG=str(config), SIGNALPOST_DATABASE_URL=env_url)
    assert refused.exit_code == 1 and f"{env_url} (SIGNALPOST_DATABASE_URL)" in refused.stderr


def test_settings_errors_are_readable(tmp_path: Path) -> None:
    result = run("orgs", "list", SIGNALPOST_PORT="eighty")
    assert result.exit_code == 2
    assert "SIGNALPOST_PORT: Input should be a valid integer" in result.stderr
    assert "'eighty'" in result.stderr
    assert "pydantic" not in result.stderr and "For further information" not in result.stderr


# --- tables and validation --------------------------------------------------------------------


def _columns_align(lines: list[str], header: str, value: str) -> None:
    """`value` starts in the column where `header` starts."""
    head = next(line for line in lines if header in line)
    row = next(line for line in lines if value in line)
    assert head.index(header) == row.index(value), (head, row)


def test_lists_are_aligned_tables(server: RunningServer, account: Account, sender: Sender) -> None:
    db = server.settings.database_url
    extra = unique_number()
    added = run("numbers", "add", extra, "--org", account.org.id, "--database-url", db)
    assert added.exit_code == 0, added.output
    listed = run("numbers", "list", "--org", account.org.id, "--database-url", db)
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:4] == ["ID", "NUMBER", "TYPE", "COUNTRY"]
    _columns_align(lines, "NUMBER", sender.number)
    _columns_align(lines, "NUMBER", extra)
    _columns_align(lines, "PROFILE", sender.profile_id)
    profiles = run("profiles", "list", "--org", account.org.id, "--database-url", db)
    _columns_align(profiles.stdout.splitlines(), "ID", sender.profile_id)
    keys = run("keys", "list", "--org", account.org.id, "--database-url", db)
    assert keys.stdout.splitlines()[0].split() == ["ID", "PREFIX", "ORGANIZATION", "STATE"]


def test_validation_errors_name_the_option(server: RunningServer) -> None:
    db = server.settings.database_url
    result = run("simulator", "chaos", "--throttled", "2", "--database-url", db)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --throttled: Input should be less than or equal to 1 (got 2.0)"
    )
    result = run("profiles", "create", "x", "--destinations", "usa", "--database-url", db)
    assert result.exit_code == 2
    assert "error: whitelisted_destinations.0:" in result.stderr
    assert "pydantic" not in result.stderr


def test_required_options_are_marked() -> None:
    helped = run("send", "--help")

    def marked(text: str, option: str) -> bool:
        line = next(line for line in text.splitlines() if f" {option} " in line)
        return "*" in line.split(option)[0]  # typer's mark of a required option

    assert marked(helped.stdout, "--to") and "[required]" in helped.stdout
    assert not marked(helped.stdout, "--from")
    assert "SIGNALPOST_PUBLIC_URL" in helped.stdout
    missing = run("send", "--text", "hi", TELNYX_API_KEY="KEYx")
    assert missing.exit_code == 2
    assert "Missing option '--to'" in missing.stderr
    inbound = run("inbound", "--help").stdout
    assert marked(inbound, "--from") and marked(inbound, "--to")


# --- talking to the server --------------------------------------------------------------------


def test_send_finds_the_server_as_serve_announces_it(
    server: RunningServer, account: Account, sender: Sender
) -> None:
    ok = run(
        "send",
        "--from",
        sender.number,
        "--to",
        "+13125550100",
        "--text",
        "hi",
        SIGNALPOST_PUBLIC_URL=server.base_url,
        TELNYX_API_KEY=account.api_key,
    )
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.splitlines()[-1] == "status: delivered"
    port = closed_port()
    down = run(
        "send",
        "--to",
        "+13125550100",
        "--text",
        "x",
        SIGNALPOST_PORT=str(port),
        TELNYX_API_KEY=account.api_key,
    )
    assert down.exit_code == 1
    assert f"cannot reach signalpost at http://127.0.0.1:{port}/v2" in down.stderr
    refused = run(
        "send",
        "--to",
        "+13125550100",
        "--text",
        "x",
        SIGNALPOST_PUBLIC_URL=server.base_url,
        TELNYX_API_KEY="KEYwrong",
    )
    assert refused.exit_code == 1
    assert f"the server at {server.base_url}/v2 refused the API key" in refused.stderr
    unreachable = run(
        "inbound",
        "--from",
        "+13125550390",
        "--to",
        sender.number,
        "--text",
        "x",
        "--base-url",
        f"http://127.0.0.1:{port}/v2",
        "--api-key",
        account.api_key,
    )
    assert unreachable.exit_code == 1
    assert f"cannot reach signalpost at http://127.0.0.1:{port}" in unreachable.stderr


@pytest.mark.parametrize(("to", "code"), [("+13125550110", 1), ("+13125550101", 0)])
def test_send_exits_non_zero_when_the_message_ends_failed(
    server: RunningServer, account: Account, sender: Sender, to: str, code: int
) -> None:
    result = run(
        "send",
        "--from",
        sender.number,
        "--to",
        to,
        "--text",
        "x",
        "--base-url",
        f"{server.base_url}/v2",
        "--api-key",
        account.api_key,
    )
    assert result.exit_code == code, result.output
    if code:
        assert "the message ended delivery_failed" in result.stderr
        assert re.search(r"status: delivery_failed \(40008 ", result.stdout)
