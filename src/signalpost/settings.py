"""One typed settings object, validated at start-up and passed in, never read at import time."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from signalpost.kit.signing import KeyPair, parse_private_key


def read_secret_file(path: Path) -> SecretStr:
    """A secret kept in a file (a mounted secret, a file only the service user may read): its
    text, without the trailing newline editors and `echo` add."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        # The reason (missing, not readable), never the content.
        raise ValueError(f"cannot read secret file {path}: {type(exc).__name__}") from None
    return SecretStr(text.rstrip("\r\n"))


def _is_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return SecretStr in typing.get_args(annotation)
    return False


class SecretsFromFiles(BaseModel):
    """Secrets given inline or from a file: for each `SecretStr` field `x` with a `x_file: Path |
    None` field next to it, a path set in `x_file` fills `x` with that file's content.

    Settings models with secrets derive from it (e.g. `SIGNALPOST_SIGNING_KEY` or
    `SIGNALPOST_SIGNING_KEY_FILE`; in the TOML file `signing_key` or `signing_key_file`; nested
    tables the same way). A secret is kept as `SecretStr`: shown as `**********` in reprs, logs and
    errors; `get_secret_value()` where it is used.
    """

    @model_validator(mode="after")
    def _secrets_from_files(self) -> Self:
        fields = type(self).model_fields
        for name, info in fields.items():
            file_field = f"{name}_file"
            if not _is_secret(info.annotation) or file_field not in fields:
                continue
            path = getattr(self, file_field)
            if path is None:
                continue
            if getattr(self, name) is not None:
                raise ValueError(f"set {name} or {file_field}, not both")
            object.__setattr__(self, name, read_secret_file(Path(path)))
        return self


class RateLimits(BaseModel):
    """Messages per second that leave the queue, per sender type and per organization."""

    long_code: float = Field(default=1.0, gt=0)
    toll_free: float = Field(default=20.0, gt=0)
    short_code: float = Field(default=1000.0, gt=0)
    alphanumeric: float = Field(default=10.0, gt=0)
    whatsapp: float = Field(default=80.0, gt=0)
    organization: float = Field(default=50.0, gt=0)
    enabled: bool = True
    max_backlog_seconds: float = Field(default=4 * 3600, gt=0)


class SmppBind(SecretsFromFiles):
    """One SMPP bind of a carrier (`[[carriers.binds]]`); held by one process at a time. Its
    password may come from a file (`password_file`) and is never shown."""

    model_config = ConfigDict(extra="forbid")

    host: str
    port: int = Field(ge=1, le=65535)
    system_id: str = Field(max_length=15)
    password: SecretStr | None = None
    password_file: Path | None = None
    system_type: str = Field(default="", max_length=12)
    # "transmitter_receiver" opens two sessions (a transmitter and a receiver) for this bind.
    bind_mode: Literal["transceiver", "transmitter_receiver"] = "transceiver"
    window: int = Field(default=10, ge=1, le=1000)
    messages_per_second: float | None = Field(default=None, gt=0)
    source_ton: int | None = Field(default=None, ge=0, le=6)
    source_npi: int | None = Field(default=None, ge=0, le=18)
    destination_ton: int = Field(default=1, ge=0, le=6)
    destination_npi: int = Field(default=1, ge=0, le=18)
    enquire_link_interval: float = Field(default=30.0, gt=0)
    registered_delivery: int = Field(default=1, ge=0, le=255)
    response_timeout: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _password_fits(self) -> Self:
        if len(self.password_text) > 8:
            raise ValueError("an SMPP password has at most 8 characters")
        return self

    @property
    def password_text(self) -> str:
        return self.password.get_secret_value() if self.password is not None else ""


class CarrierConfig(BaseModel):
    """A carrier (`[[carriers]]`): the simulator, or an SMPP account with its binds."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    kind: Literal["smpp", "simulator"]
    binds: list[SmppBind] = Field(default_factory=list)
    fallback: str | None = None  # used while this carrier has no bound session

    @model_validator(mode="after")
    def _binds_for_smpp(self) -> CarrierConfig:
        if self.kind == "smpp" and not self.binds:
            raise ValueError(f"carrier {self.name!r}: an smpp carrier needs [[carriers.binds]]")
        if self.kind == "simulator" and self.binds:
            raise ValueError(f"carrier {self.name!r}: the simulator has no binds")
        return self


class Route(BaseModel):
    """A row of the route table (`[[routes]]`): the first row that matches a message chooses its
    carrier; a row without conditions matches every message."""

    model_config = ConfigDict(extra="forbid")

    carrier: str
    prefix: str | None = Field(default=None, pattern=r"^\+?[0-9]{1,15}$")  # of the destination
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")  # of the destination
    messaging_profile_id: str | None = None
    fallback: str | None = None  # overrides the carrier's own fallback


class Settings(BaseSettings, SecretsFromFiles):
    """signalpost configuration: env vars `SIGNALPOST_*`, an optional TOML file, CLI flags."""

    model_config = SettingsConfigDict(
        env_prefix="SIGNALPOST_", env_nested_delimiter="__", extra="forbid"
    )

    database_url: str = "sqlite+aiosqlite:///./signalpost.db"
    # PostgreSQL: where workers LISTEN for queued jobs, when `database_url` goes through a
    # transaction-mode pooler such as PgBouncer (LISTEN needs a session); default: database_url.
    database_listen_url: str | None = None
    # PostgreSQL through a transaction-mode pooler (PgBouncer): no prepared statements kept.
    database_transaction_pooler: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str | None = None
    api_key: str | None = None
    workers: int = Field(default=1, ge=0)
    worker_poll_interval: float = Field(default=0.2, gt=0)
    # PostgreSQL, while a worker process's LISTEN connection is up: enqueues wake the workers, and
    # they poll only this often, as a safety net (kit.queue.Worker).
    worker_listening_poll_interval: float = Field(default=1.0, gt=0)
    # Jobs one worker task runs at once (per lane: sends and webhooks have workers of their own).
    worker_concurrency: int = Field(default=800, ge=1)
    # While busy, a worker lets due jobs gather this long before claiming them (kit.queue.Worker).
    worker_linger: float = Field(default=0.02, ge=0, le=5)
    # A live worker renews its leases every third of this; a dead one is found out after it.
    job_lease_seconds: float = Field(default=10.0, gt=0)
    log_level: str = "info"
    log_format: Literal["text", "json"] = "text"  # json: one JSON object per line
    # When set, `GET /metrics` asks for `Authorization: Bearer <metrics_token>`.
    metrics_token: SecretStr | None = None
    metrics_token_file: Path | None = None
    # FastAPI's native OpenTelemetry (spans, metrics and logs to the process's global providers):
    # off unless asked for, since checking for providers on every request has a cost.
    opentelemetry: bool = False
    # Serve the send endpoints through kit.fastlane (same answers, a fraction of the CPU).
    fast_lane: bool = True
    carrier: str = "simulator"  # the default carrier when `default_carrier` is not set
    default_carrier: str | None = None
    carriers: list[CarrierConfig] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    # A bind's lease in the database: its holder renews it every third of this; another process
    # takes the bind over this long after the holder stopped renewing (died).
    smpp_lease_seconds: float = Field(default=6.0, ge=1, le=300)
    # Parts of a concatenated inbound message are joined when all are in, or after this long with
    # those received so far.
    smpp_reassembly_seconds: float = Field(default=60.0, gt=0)
    # An inbound deliver_sm identical to one received this recently (the SMSC sending it again
    # because it saw no answer) is acknowledged and not delivered twice.
    smpp_duplicate_seconds: float = Field(default=120.0, ge=0)
    simulator_latency: float = Field(default=0.05, ge=0)
    webhook_timeout: float = Field(default=2.0, gt=0)
    webhook_attempts: int = Field(default=3, ge=1)
    webhook_retry_base: float = Field(default=1.0, ge=0)
    message_validity_seconds: float = Field(default=4 * 3600, gt=0)
    schedule_min_lead_seconds: float = Field(default=300.0, ge=0)
    schedule_max_lead_seconds: float = Field(default=5 * 24 * 3600, gt=0)
    idempotency_ttl_seconds: float = Field(default=24 * 3600, gt=0)
    # Messages, webhook events and attempts, failed jobs, idempotency records and link clicks older
    # than this many days are purged in the background (signalpost.retention); 0 keeps everything.
    retention_days: float = Field(default=30.0, ge=0)
    retention_interval: float = Field(default=600.0, gt=0)  # seconds between sweeps
    retention_batch: int = Field(default=200, ge=1, le=10_000)  # rows per delete transaction
    media_fetch_timeout: float = Field(default=10.0, gt=0)  # per MMS media download
    # Request limits (kit.limits): larger bodies get 413, more or larger headers 431, a body that
    # does not arrive in time 408.
    max_body_bytes: int = Field(default=1 << 20, ge=1024, le=1 << 30)
    max_header_bytes: int = Field(default=32 * 1024, ge=1024, le=1 << 20)
    max_headers: int = Field(default=100, ge=10, le=1000)
    request_body_timeout: float = Field(default=30.0, gt=0, le=3600)
    # Outbound URL guard (kit.netguard): false refuses loopback, private, link-local, ... addresses
    # for webhooks, media and short links; the networks listed stay allowed.
    outbound_allow_private: bool = True
    outbound_allowed_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    # API requests per second per API key (accounts.throttle); off unless set. Up to
    # `api_rate_burst` requests at once (default: the rate, at least 1).
    api_rate_limit: float | None = Field(default=None, gt=0)
    api_rate_burst: int | None = Field(default=None, ge=1)
    pricing: dict[str, Any] | None = None  # overrides of messages.pricing.PriceTable
    # The default organization's Ed25519 webhook signing key (base64 of the 32-byte seed, or the PEM
    # that `openssl genpkey -algorithm ed25519` writes), kept out of the database when given.
    signing_key: SecretStr | None = None
    signing_key_file: Path | None = None
    config_file: Path | None = None

    @field_validator("outbound_allowed_networks", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        # From the environment: a comma-separated list (`10.1.0.0/16,fd00::/8`).
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("outbound_allowed_networks")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        from signalpost.kit.netguard import parse_networks

        parse_networks(value)  # ValueError names the bad one
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)

    @model_validator(mode="after")
    def _carriers_known(self) -> Settings:
        names = [c.name for c in self.carriers]
        if len(set(names)) != len(names):
            raise ValueError("carrier names must be unique")
        known = {*names, "simulator"}
        wanted: list[tuple[str, str | None]] = [
            ("default_carrier", self.default_carrier or self.carrier)
        ]
        wanted += [(f"{c.name}.fallback", c.fallback) for c in self.carriers if c.fallback]
        for i, r in enumerate(self.routes):
            wanted += [(f"routes[{i}].carrier", r.carrier), (f"routes[{i}].fallback", r.fallback)]
        for where, name in wanted:
            if name is not None and name not in known:
                raise ValueError(f"{where}: unknown carrier {name!r} (known: {sorted(known)})")
        return self

    @property
    def effective_default_carrier(self) -> str:
        return self.default_carrier or self.carrier

    def carrier_config(self, name: str) -> CarrierConfig:
        for c in self.carriers:
            if c.name == name:
                return c
        return CarrierConfig(name=name, kind="simulator")

    @model_validator(mode="after")
    def _check_signing_key(self) -> Self:
        self.signing_key_pair  # noqa: B018 (parsed now, so a bad key stops the start)
        return self

    @property
    def signing_key_pair(self) -> KeyPair | None:
        """The default organization's key pair when `signing_key` (or its file) gives it."""
        if self.signing_key is None:
            return None
        return parse_private_key(self.signing_key.get_secret_value())

    @property
    def base_url(self) -> str:
        """The address clients and short links use to reach this server."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    @property
    def safe_database_url(self) -> str:
        """The database URL with any password masked, for logs and banners."""
        from sqlalchemy.engine import make_url

        try:
            return make_url(self.database_url).render_as_string(hide_password=True)
        except Exception:
            return "<unparseable database url>"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings: CLI overrides beat env vars, which beat the TOML file, which beats defaults."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    if config_file is None:
        return Settings(**clean)
    file_values = TomlConfigSettingsSource(Settings, toml_file=config_file)()
    env_values = Settings().model_dump(exclude_unset=True)
    merged = _deep_merge(_deep_merge(dict(file_values), env_values), clean)
    merged["config_file"] = config_file
    return Settings(**merged)


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` wins; nested tables (e.g. `rate_limits`) merge key by key."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out
