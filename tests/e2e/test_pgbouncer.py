"""Behind PgBouncer in transaction mode (`database_transaction_pooler`), with workers listening on the
database itself (`database_listen_url`): migrations, sends with their group commits and batch jobs,
idempotent replays, webhooks. Runs where the `pgbouncer` binary is installed (CI installs it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url
from telnyx import Telnyx

from tests import conftest
from tests.conftest import create_pg_database, drop_pg_database, unique_number
from tests.support.messaging import event_types, make_sender
from tests.support.receiver import WebhookReceiver
from tests.support.server import RunningServer, free_port
from tests.support.wait import wait_until

pytestmark = pytest.mark.postgres

PGBOUNCER = shutil.which("pgbouncer") or (
    "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
)


@pytest.fixture
def pooled_url() -> Iterator[tuple[str, str]]:
    """(the database's URL through a transaction-mode PgBouncer on a free port, its direct URL)"""
    if PGBOUNCER is None:
        pytest.skip("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    # PgBouncer refuses to run as root: it then runs as `nobody`, in a directory it can use.
    tmp_path = Path(tempfile.mkdtemp(prefix="signalpost-pgbouncer-"))
    tmp_path.chmod(0o777)
    as_user = ["-u", "nobody"] if os.geteuid() == 0 else []
    direct, name = create_pg_database()
    target = make_url(direct)
    port = free_port()
    (tmp_path / "users.txt").write_text(f'"{target.username}" ""\n')
    (tmp_path / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"{name} = host={target.host} port={target.port or 5432} dbname={name}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\n"
        f"unix_socket_dir =\nauth_type = trust\nauth_file = {tmp_path / 'users.txt'}\n"
        "pool_mode = transaction\ndefault_pool_size = 5\nmax_client_conn = 200\n"
        "ignore_startup_parameters = extra_float_digits\n"
        f"logfile = {tmp_path / 'pgbouncer.log'}\n"
    )
    bouncer = subprocess.Popen(
        [PGBOUNCER, *as_user, str(tmp_path / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _listening(port) or bouncer.poll() is not None, 15)
        assert bouncer.poll() is None, (tmp_path / "pgbouncer.log").read_text()
        yield target.set(port=port).render_as_string(hide_password=False), direct
    finally:
        bouncer.terminate()
        bouncer.wait(10)
        drop_pg_database(name)
        shutil.rmtree(tmp_path, ignore_errors=True)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_signalpost_works_through_pgbouncer_in_transaction_mode(
    pooled_url: tuple[str, str],
) -> None:
    pooled, direct = pooled_url
    settings = conftest.test_settings(
        pooled,
        database_listen_url=direct,
        database_transaction_pooler=True,
        worker_poll_interval=30,  # jobs must start through NOTIFY (via the pooler) and LISTEN
    )
    server = RunningServer(settings).start()
    receiver = WebhookReceiver().start()
    try:
        org, key = server.new_organization(f"bouncer-{uuid.uuid4().hex[:6]}")
        client = Telnyx(
            api_key=key,
            base_url=f"{server.base_url}/v2",
            public_key=org.public_key,
            max_retries=0,
            _strict_response_validation=True,
        )
        sender = make_sender(client, receiver, unique_number())
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        sent = [
            client.messages.send(
                from_=sender.number, to=f"+1312555{i:04d}", text=f"b{i}", extra_headers=headers
            ).data
            if i == 0
            else client.messages.send(from_=sender.number, to=f"+1312555{i:04d}", text=f"b{i}").data
            for i in range(8)
        ]
        ids = [m.id or "" for m in sent if m is not None]
        again = client.messages.send(
            from_=sender.number, to="+13125550000", text="b0", extra_headers=headers
        ).data
        assert again is not None and again.id == ids[0]

        def finalized() -> bool:
            got = receiver.on(sender.hook_path)
            return all("message.finalized" in event_types(got, i) for i in ids)

        wait_until(finalized, 20)  # well before the 30 s poll
        for hook in receiver.on(sender.hook_path):
            assert client.webhooks.unwrap(hook.body.decode(), headers=hook.headers).data
        final = client.messages.retrieve(ids[-1]).data
        assert final is not None and final.to and final.to[0].status == "delivered"
    finally:
        receiver.stop()
        server.stop()
