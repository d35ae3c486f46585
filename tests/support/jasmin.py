"""Jasmin SMS Gateway 0.11.0 as a third-party SMPP peer for the end-to-end tests.

Jasmin pins old dependencies, so it runs from its own venv, created on first use in the git-ignored
`.jasmin-venv/` at the repository root (`python3 -m venv` + `pip install jasmin==0.11.0`; 0.11.1
never delivers receipts). It needs the local RabbitMQ (127.0.0.1:5672, guest/guest) and Redis
(127.0.0.1:6379): each run gets a RabbitMQ vhost of its own (made with `rabbitmqctl`) and a Redis
database number of its own, every Jasmin listener is on 127.0.0.1 on a free port, and its
configuration, store and logs live in a temporary directory.

When Jasmin or the services cannot be had the test is skipped, except under CI (`CI` set), where
it fails: CI must run it.
"""

from __future__ import annotations

import fcntl
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, NoReturn

import pytest

from tests.support.server import free_port
from tests.support.smsc import SmscSim, wait_for_records

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".jasmin-venv"
VERSION = "0.11.0"
RABBITMQ = ("127.0.0.1", 5672)
REDIS = ("127.0.0.1", 6379)
SYSTEM_ID, PASSWORD = "signalpost", "secret"  # the account signalpost binds to Jasmin with


def unavailable(reason: str) -> NoReturn:
    """Skip locally; fail under CI, which must run the Jasmin tests."""
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(f"CI must run the Jasmin end-to-end test: {reason}", pytrace=False)
    pytest.skip(reason)


def _reachable(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=2):
            return True
    except OSError:
        return False


def check_services() -> None:
    for name, address in (("RabbitMQ", RABBITMQ), ("Redis", REDIS)):
        if not _reachable(address):
            unavailable(f"{name} is not listening on {address[0]}:{address[1]}")
    if shutil.which("rabbitmqctl") is None:
        unavailable("rabbitmqctl is not installed (a vhost per run is made with it)")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def jasmin_venv() -> Path:
    """The venv holding Jasmin, created once (under a file lock: pytest runs may overlap)."""
    marker = VENV / f".installed-jasmin-{VERSION}"
    with _locked(ROOT / ".jasmin-venv.lock"):
        if marker.exists():
            return VENV
        shutil.rmtree(VENV, ignore_errors=True)
        steps = [
            [_base_python(), "-m", "venv", str(VENV)],
            [str(VENV / "bin" / "pip"), "install", "--quiet", f"jasmin=={VERSION}"],
        ]
        for step in steps:
            try:
                done = subprocess.run(step, capture_output=True, text=True, timeout=600)
            except subprocess.TimeoutExpired:
                unavailable(f"{' '.join(step[:3])} timed out")
            if done.returncode != 0:
                unavailable(f"cannot install Jasmin {VERSION}: {done.stderr[-500:]}")
        marker.touch()
    return VENV


def _base_python() -> str:
    """The interpreter the project venv was made from (Jasmin must not share the project's)."""
    base = getattr(sys, "_base_executable", "") or shutil.which("python3") or "python3"
    return str(base)


def _rabbitmqctl(*args: str) -> None:
    done = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        unavailable(f"rabbitmqctl {' '.join(args)}: {(done.stderr or done.stdout)[-300:]}")


CONFIG = """\
[smpp-server]
id = SIGNALPOSTTEST
bind = 127.0.0.1
port = {smpp}
log_level = INFO

[smpp-server-pb]
bind = 127.0.0.1
port = {smpps_pb}

[smpp-server-pb-client]
host = 127.0.0.1
port = {smpps_pb}

[client-management]
bind = 127.0.0.1
port = {cm}

[router]
bind = 127.0.0.1
port = {router}

[jcli]
bind = 127.0.0.1
port = {jcli}
authentication = False

[interceptor]
bind = 127.0.0.1
port = {interceptor}

[amqp-broker]
host = {amqp_host}
port = {amqp_port}
vhost = {vhost}
username = guest
password = guest
heartbeat = 0
spec = {spec}

[redis-client]
host = {redis_host}
port = {redis_port}
dbid = {dbid}
password = None
poolsize = 10
"""


class Jasmin:
    """jasmind on free loopback ports, relaying to `upstream` through a connector `UPSTREAM`;
    signalpost binds to `smpp_port` as SYSTEM_ID/PASSWORD and gets the MOs of every sender."""

    def __init__(self, upstream: SmscSim) -> None:
        check_services()
        venv = jasmin_venv()
        # jasmind refuses to start while another one runs on the machine (its lock /tmp/jasmind):
        # overlapping test runs take turns here instead of failing.
        self._turn = _machine_turn(MACHINE_LOCK, timeout=600)
        self.upstream = upstream
        self._dir = tempfile.TemporaryDirectory(prefix="jasmin-")
        home = Path(self._dir.name)
        for sub in ("etc/store", "log"):
            (home / sub).mkdir(parents=True)
        self.vhost = f"signalpost-test-{uuid.uuid4().hex[:10]}"
        _rabbitmqctl("add_vhost", self.vhost)
        _rabbitmqctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")
        self.smpp_port, self.jcli_port = free_port(), free_port()
        config = home / "etc" / "jasmin.cfg"
        config.write_text(
            CONFIG.format(
                smpp=self.smpp_port,
                smpps_pb=free_port(),
                cm=free_port(),
                router=free_port(),
                jcli=self.jcli_port,
                interceptor=free_port(),
                amqp_host=RABBITMQ[0],
                amqp_port=RABBITMQ[1],
                vhost=self.vhost,
                spec=_amqp_spec(venv),
                redis_host=REDIS[0],
                redis_port=REDIS[1],
                dbid=random.randint(1, 15),
            )
        )
        env = {
            **os.environ,
            "CONFIG_PATH": f"{home}/etc/",
            "STORE_PATH": f"{home}/etc/store/",
            "LOG_PATH": f"{home}/log",
            "AMQP_BROKER_SPEC": _amqp_spec(venv),
        }
        env.pop("PYTHONPATH", None)
        self.log_dir = home / "log"
        self.stdout = (home / "log" / "jasmind.stdout").open("w")
        self.proc = subprocess.Popen(
            [
                str(venv / "bin" / "python"),
                str(venv / "bin" / "jasmind.py"),
                "-c",
                str(config),
                "--enable-dlr-lookup",
                "--enable-dlr-thrower",
                "--disable-http-api",
            ],
            env=env,
            cwd=home,
            stdout=self.stdout,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_listening()
            self.provision()
            wait_for_records(upstream, "bind", 1, timeout=30)
        except BaseException:
            self.close()
            raise

    def _wait_listening(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jasmind exited {self.proc.returncode}: {self.output()}")
            if _reachable(("127.0.0.1", self.smpp_port)) and _reachable(
                ("127.0.0.1", self.jcli_port)
            ):
                return
            time.sleep(0.05)
        raise RuntimeError(f"jasmind did not listen within {timeout}s: {self.output()}")

    def output(self) -> str:
        self.stdout.flush()
        return (self.log_dir / "jasmind.stdout").read_text(errors="replace")[-2000:]

    def provision(self) -> None:
        """The group, the user signalpost binds as, the upstream connector (unthrottled: Jasmin's
        default is 1 msg/s), an MT route to it and an MO route to the user."""
        lines = [
            *("group -a", "gid g1", "ok"),
            *("user -a", f"username {SYSTEM_ID}", f"password {PASSWORD}", "gid g1", "uid u1"),
            "ok",
            *("smppccm -a", "cid UPSTREAM", "host 127.0.0.1", f"port {self.upstream.port}"),
            *("username jasmin", "password jpass", "bind transceiver", "submit_throughput 0"),
            *("ok", "smppccm -1 UPSTREAM"),
            *("mtrouter -a", "type DefaultRoute", "connector smppc(UPSTREAM)", "rate 0", "ok"),
            *("morouter -a", "type DefaultRoute", f"connector smpps({SYSTEM_ID})", "ok"),
        ]
        with JCli(self.jcli_port) as cli:
            for line in lines:
                answer = cli.command(line)
                if any(bad in answer for bad in ("Error", "Unknown", "Invalid")):
                    raise RuntimeError(f"jCli {line!r}: {answer}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.stdout.close()
        subprocess.run(
            ["rabbitmqctl", "-q", "delete_vhost", self.vhost],
            capture_output=True,
            timeout=60,
            check=False,
        )
        self._dir.cleanup()
        self._turn.close()  # the next run's jasmind may start


MACHINE_LOCK = Path(tempfile.gettempdir()) / "signalpost-jasmind.lock"


def _machine_turn(path: Path, timeout: float) -> IO[str]:
    """An exclusive lock on `path`, held until the returned file is closed."""
    handle = path.open("a")
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() > deadline:
                handle.close()
                raise RuntimeError(f"another test run held {path} for {timeout:.0f} s") from None
            time.sleep(0.5)


def _amqp_spec(venv: Path) -> str:
    """txamqp's bundled AMQP 0-9-1 spec (the wheel does not ship Jasmin's own resource file)."""
    found = sorted(
        venv.glob("lib/python*/site-packages/txamqp/specs/standard/amqp0-9-1.stripped.xml")
    )
    if not found:
        raise RuntimeError(f"no txamqp AMQP spec under {venv}")
    return str(found[0])


class JCli:
    """Jasmin's management console (a telnet-like line protocol), driven line by line."""

    PROMPTS = (b"jcli : ", b"> ")

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15)

    def __enter__(self) -> JCli:
        banner = b""
        deadline = time.monotonic() + 15
        while b"Session ref" not in banner:  # the banner ends without a prompt
            if time.monotonic() > deadline:
                raise TimeoutError(f"no jCli banner: {banner!r}")
            banner += self.sock.recv(4096)
        self.command("")
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.sock.sendall(b"quit\r\n")
        finally:
            self.sock.close()

    def command(self, line: str) -> str:
        self.sock.sendall(line.encode() + b"\r\n")
        buf = b""
        deadline = time.monotonic() + 15
        while not buf.endswith(self.PROMPTS):
            if time.monotonic() > deadline:
                raise TimeoutError(f"jCli {line!r}: {buf!r}")
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            buf += bytes(b for b in chunk if b < 0xF0)  # drop telnet negotiation bytes
        text = buf.decode(errors="replace")
        for prompt in ("jcli : ", "> "):
            text = text.replace(prompt, "")
        return text.strip()
