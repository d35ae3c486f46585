"""`settings.SecretsFromFiles`: any `SecretStr` field `x` next to an `x_file` field is filled from
that file, in nested models too (e.g. a carrier's password), and never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from signalpost.settings import SecretsFromFiles


class Bind(SecretsFromFiles):
    system_id: str
    password: SecretStr | None = None
    password_file: Path | None = None


class Config(BaseModel):
    binds: list[Bind]


def test_a_nested_secret_comes_from_its_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cr3t-pw\n")
    config = Config.model_validate(
        {
            "binds": [
                {"system_id": "a", "password_file": str(secret)},
                {"system_id": "b", "password": "inline"},
            ]
        }
    )
    assert config.binds[0].password is not None
    assert config.binds[0].password.get_secret_value() == "s3cr3t-pw"
    assert config.binds[1].password is not None
    assert config.binds[1].password.get_secret_value() == "inline"
    assert "s3cr3t-pw" not in repr(config) and "inline" not in str(config.model_dump())


def test_both_or_an_unreadable_file_is_an_error_without_the_secret(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("hidden-value")
    with pytest.raises(ValidationError, match="not both") as err:
        Bind(system_id="a", password=SecretStr("x"), password_file=secret)
    assert "hidden-value" not in str(err.value)
    with pytest.raises(ValidationError, match="cannot read secret file"):
        Bind(system_id="a", password_file=tmp_path / "missing")
