"""Secrets from files: the default organization's webhook signing key from `signing_key_file`
signs real webhooks (verified by the SDK with the matching public key), is not stored in the
database, and appears in no log line, error or `/openapi.json`."""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from nacl.signing import SigningKey
from pydantic import ValidationError
from sqlalchemy import select

from signalpost.app import build_context, prepare
from signalpost.context import AppContext
from signalpost.models import organizations
from signalpost.settings import Settings
from tests.conftest import BACKENDS, create_pg_database, drop_pg_database, sdk_client
from tests.conftest import test_settings as make_settings
from tests.support.messaging import events_for, make_sender, wait_final
from tests.support.receiver import WebhookReceiver
from tests.support.server import RunningServer


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/signalpost.db"
        return
    url, name = create_pg_database()
    yield url
    drop_pg_database(name)


def _key_file(tmp_path: Path) -> tuple[Path, str, str]:
    """A fresh Ed25519 key in a file (base64 seed, newline-terminated): (file, seed, public)."""
    key = SigningKey.generate()
    seed = base64.b64encode(bytes(key)).decode()
    public = base64.b64encode(bytes(key.verify_key)).decode()
    path = tmp_path / "signing.key"
    path.write_text(seed + "\n")
    path.chmod(0o600)
    return path, seed, public


def test_webhooks_are_signed_with_the_key_from_the_file(
    db_url: str, tmp_path: Path, receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    path, seed, public = _key_file(tmp_path)
    api_key = "KEY" + secrets.token_hex(16)
    caplog.set_level(logging.DEBUG)
    server = RunningServer(
        make_settings(db_url, api_key=api_key, signing_key_file=path, log_level="debug")
    ).start()
    try:
        client = sdk_client(server, api_key, public)
        sender = make_sender(client, receiver, "+13125550142")
        msg = client.messages.send(from_=sender.number, to="+14156660142", text="signed").data
        assert msg is not None and msg.id
        wait_final(client, msg.id)
        got = receiver.wait_for(lambda r: len(events_for(r, msg.id or "")) >= 2)
        hooks = [r for r in got if r.path == sender.hook_path]
        assert hooks
        for hook in hooks:
            # The SDK checks the signature with the public key of the key in the file.
            event = client.webhooks.unwrap(hook.body.decode(), headers=hook.headers)
            assert event.data is not None

        async def stored(ctx: AppContext) -> list[tuple[str, str]]:
            async with ctx.db.transaction() as uow:
                q = select(organizations.c.signing_seed, organizations.c.public_key)
                return [tuple(r) for r in await uow.conn.execute(q)]

        rows = server.run(stored)
        assert ("external", public) in rows
        assert all(seed not in value for row in rows for value in row)
        spec = httpx.get(f"{server.base_url}/openapi.json").text
        assert seed not in spec and str(path) not in spec
        assert "signing_key" not in spec
        assert seed not in repr(server.settings) and seed not in str(server.settings.model_dump())
    finally:
        server.stop()
    assert caplog.records  # the server logged (at debug level)
    assert seed not in caplog.text


def test_a_start_without_the_key_after_one_was_given_fails_clearly(
    db_url: str, tmp_path: Path
) -> None:
    path, _, public = _key_file(tmp_path)

    async def start(settings: Settings) -> str:
        ctx = build_context(settings)
        try:
            return (await prepare(ctx)).organization.public_key
        finally:
            await ctx.db.dispose()

    assert asyncio.run(start(make_settings(db_url, signing_key_file=path))) == public
    with pytest.raises(ValueError, match="neither is set"):
        asyncio.run(start(make_settings(db_url)))


def test_key_from_environment_variable_file_and_pem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, seed, public = _key_file(tmp_path)
    monkeypatch.setenv("SIGNALPOST_SIGNING_KEY_FILE", str(path))
    settings = Settings()
    pair = settings.signing_key_pair
    assert pair is not None and (pair.seed_b64, pair.public_b64) == (seed, public)
    assert seed not in repr(settings)
    monkeypatch.delenv("SIGNALPOST_SIGNING_KEY_FILE")

    monkeypatch.setenv("SIGNALPOST_SIGNING_KEY", seed)
    pair = Settings().signing_key_pair
    assert pair is not None and pair.public_b64 == public
    monkeypatch.delenv("SIGNALPOST_SIGNING_KEY")

    openssl = subprocess.run(
        ["openssl", "genpkey", "-algorithm", "ed25519"], capture_output=True, check=False
    )
    if openssl.returncode == 0:
        pem = tmp_path / "key.pem"
        pem.write_bytes(openssl.stdout)
        pair = Settings(signing_key_file=pem).signing_key_pair
        assert pair is not None
        der = subprocess.run(
            ["openssl", "pkey", "-in", str(pem), "-pubout", "-outform", "DER"],
            capture_output=True,
            check=True,
        ).stdout
        assert base64.b64decode(pair.public_b64) == der[-32:]


def test_bad_secrets_are_refused_without_showing_them(tmp_path: Path) -> None:
    bad = tmp_path / "bad.key"
    secret_text = "not-a-key-" + secrets.token_hex(8)
    bad.write_text(secret_text)
    with pytest.raises(ValidationError) as err:
        Settings(signing_key_file=bad)
    assert secret_text not in str(err.value)
    assert "not base64" in str(err.value) or "not an Ed25519" in str(err.value)
    with pytest.raises(ValidationError) as err:
        Settings(signing_key_file=tmp_path / "missing.key")
    assert "cannot read secret file" in str(err.value)
    with pytest.raises(ValidationError) as err:
        Settings(signing_key="x", signing_key_file=bad)
    assert "not both" in str(err.value)

    # The same through the CLI: a clear error, exit code 2, no secret in it.
    done = subprocess.run(
        [sys.executable, "-m", "signalpost.cli", "db", "upgrade"],
        env={"SIGNALPOST_SIGNING_KEY_FILE": str(bad), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert secret_text not in done.stdout + done.stderr
