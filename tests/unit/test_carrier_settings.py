"""Carrier settings (the TOML shape of the gateway, env vars, validation) and the route table."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from signalpost.carriers.base import OutboundSubmit, SubmitResult
from signalpost.carriers.router import CarrierRouter
from signalpost.carriers.smpp.runtime import bind_specs
from signalpost.settings import Settings, load_settings

ISSUE_SHAPE = """
default_carrier = "upstream"          # the simulator stays the default when this is absent
[[carriers]]
name = "upstream"
kind = "smpp"
[[carriers.binds]]
host = "127.0.0.1"
port = 2776
system_id = "signalpost"
password = "secret"
window = 10
"""


def test_the_documented_toml_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIGNALPOST_CARRIERS", raising=False)
    path = tmp_path / "signalpost.toml"
    path.write_text(ISSUE_SHAPE)
    s = load_settings(path)
    assert s.effective_default_carrier == "upstream"
    (c,) = s.carriers
    (b,) = c.binds
    assert (c.name, c.kind, b.host, b.port, b.system_id, b.password_text, b.window) == (
        "upstream",
        "smpp",
        "127.0.0.1",
        2776,
        "signalpost",
        "secret",
        10,
    )
    (spec,) = bind_specs(s.carriers)
    assert spec.key == "upstream/0" and spec.configs[0].mode == "transceiver"


def test_simulator_stays_the_default_and_env_vars_work(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().effective_default_carrier == "simulator"
    carriers = [
        {
            "name": "a",
            "kind": "smpp",
            "binds": [
                {"host": "h", "port": 1, "system_id": "x", "bind_mode": "transmitter_receiver"}
            ],
        }
    ]
    monkeypatch.setenv("SIGNALPOST_CARRIERS", json.dumps(carriers))
    monkeypatch.setenv("SIGNALPOST_DEFAULT_CARRIER", "a")
    s = Settings()
    assert s.effective_default_carrier == "a"
    (spec,) = bind_specs(s.carriers)
    assert [c.mode for c in spec.configs] == ["transmitter", "receiver"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"default_carrier": "nope"}, "unknown carrier 'nope'"),
        ({"carriers": [{"name": "a", "kind": "smpp"}]}, "needs [[carriers.binds]]"),
        ({"routes": [{"carrier": "ghost"}]}, "unknown carrier 'ghost'"),
        (
            {"carriers": [{"name": "a", "kind": "simulator"}, {"name": "a", "kind": "simulator"}]},
            "unique",
        ),
        (
            {
                "carriers": [
                    {
                        "name": "a",
                        "kind": "smpp",
                        "binds": [
                            {"host": "h", "port": 1, "system_id": "x", "password": "toolongpw"}
                        ],
                    }
                ]
            },
            "at most 8 characters",
        ),
    ],
)
def test_bad_carrier_settings_are_refused(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Settings(**values)  # type: ignore[arg-type]


class Recording:
    def __init__(self, name: str) -> None:
        self.name = name
        self.got: list[str] = []

    async def submit(self, message: OutboundSubmit) -> SubmitResult:
        return (await self.submit_many([message]))[0]

    async def submit_many(self, messages: object) -> list[SubmitResult]:
        ms = list(messages)  # type: ignore[call-overload]
        self.got += [m.to_number for m in ms]
        return [SubmitResult("accepted", carrier_message_id=self.name)] * len(ms)

    def accepts_mms(self, to_number: str) -> bool:
        return self.name == "simulator"

    async def close(self) -> None:
        return None


def _submit(to: str, profile: str | None = None) -> OutboundSubmit:
    return OutboundSubmit("m", "o", "+13125550100", to, "hi", [], 1, "GSM-7", 1, profile)


def test_route_table() -> None:
    binds = [{"host": "h", "port": 1, "system_id": "x"}]
    s = Settings(
        default_carrier="main",
        carriers=[
            {"name": "main", "kind": "smpp", "binds": binds, "fallback": "simulator"},
            {"name": "uk", "kind": "smpp", "binds": binds},
            {"name": "vip", "kind": "smpp", "binds": binds},
        ],
        routes=[
            {"carrier": "vip", "messaging_profile_id": "p-vip"},
            {"carrier": "uk", "country": "GB"},
            {"carrier": "main", "prefix": "+1312", "fallback": "uk"},
        ],
    )  # type: ignore[arg-type]
    carriers = {n: Recording(n) for n in ("simulator", "main", "uk", "vip")}
    up: set[str] = {"main", "uk", "vip"}

    async def bound(name: str) -> bool:
        return name in up

    router = CarrierRouter(s, carriers, bound)  # type: ignore[arg-type]

    def chosen(to: str, profile: str | None = None) -> str:
        (r,) = asyncio.run(router.submit_many([_submit(to, profile)]))
        return str(r.carrier_message_id)

    assert chosen("+447700900123") == "uk"
    assert chosen("+447700900123", "p-vip") == "vip"
    assert chosen("+13125550111") == "main"
    assert chosen("+14155550111") == "main"  # the default
    up.discard("main")
    assert chosen("+13125550111") == "uk"  # the route's fallback while main has no bound session
    assert chosen("+14155550111") == "simulator"  # the carrier's own fallback
    assert router.accepts_mms("+14155550111") is False


def test_a_bind_password_from_a_file_is_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIGNALPOST_CARRIERS", raising=False)
    secret = tmp_path / "smpp-password"
    secret.write_text("pw-file\n")
    path = tmp_path / "signalpost.toml"
    path.write_text(ISSUE_SHAPE.replace('password = "secret"', f'password_file = "{secret}"'))
    s = load_settings(path)
    (b,) = s.carriers[0].binds
    assert b.password_text == "pw-file"
    assert "pw-file" not in repr(s) and "pw-file" not in str(s.model_dump())
    (spec,) = bind_specs(s.carriers)
    assert "pw-file" not in repr(spec)


def test_a_bind_password_longer_than_smpp_allows_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIGNALPOST_CARRIERS", raising=False)
    path = tmp_path / "signalpost.toml"
    path.write_text(ISSUE_SHAPE.replace('password = "secret"', 'password = "nine-char"'))
    with pytest.raises(ValidationError, match="at most 8") as err:
        load_settings(path)
    assert "nine-char" not in str(err.value)
