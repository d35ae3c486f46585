"""storage: ids and times stored compactly on SQLite; an index no query used dropped

On SQLite every id column holding a canonical UUID is rewritten as its 16 bytes and every time
column as integer microseconds since 1970 (`signalpost.kit.compact`); the downgrade writes them back
as text. PostgreSQL's columns keep their types: only the index goes.

Revision ID: 0006
Revises: 0005
"""

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The id columns (VARCHAR(36)) and the time columns of each table, as of this revision.
IDS: dict[str, tuple[str, ...]] = {
    "organizations": ("id",),
    "api_keys": ("id", "organization_id"),
    "messaging_profiles": ("id", "organization_id"),
    "autoresp_configs": ("id", "messaging_profile_id"),
    "phone_numbers": ("organization_id", "messaging_profile_id"),
    "short_codes": ("id", "organization_id", "messaging_profile_id"),
    "alphanumeric_sender_ids": ("id", "organization_id", "messaging_profile_id"),
    "number_orders": ("id", "organization_id", "messaging_profile_id"),
    "bulk_updates": ("order_id", "organization_id", "messaging_profile_id"),
    "messages": ("id", "organization_id", "messaging_profile_id", "group_id"),
    "idempotency_keys": ("organization_id",),
    "webhook_events": ("id", "organization_id", "message_id"),
    "webhook_attempts": ("id", "event_id"),
    "optouts": ("id", "organization_id", "messaging_profile_id"),
    "sticky_senders": ("messaging_profile_id",),
    "url_domains": ("id", "organization_id"),
    "short_links": ("organization_id", "message_id", "messaging_profile_id"),
    "link_clicks": ("id",),
    "smpp_parts": ("message_id",),
}
TIMES: dict[str, tuple[str, ...]] = {
    "organizations": ("created_at",),
    "api_keys": ("created_at", "revoked_at"),
    "server_state": ("updated_at",),
    "messaging_profiles": ("created_at", "updated_at"),
    "autoresp_configs": ("created_at", "updated_at"),
    "phone_numbers": ("created_at", "updated_at"),
    "short_codes": ("created_at", "updated_at"),
    "alphanumeric_sender_ids": ("created_at", "updated_at"),
    "number_orders": ("created_at", "updated_at"),
    "bulk_updates": ("created_at", "updated_at"),
    "jobs": ("run_at", "locked_until", "created_at", "updated_at"),
    "messages": ("received_at", "send_at", "sent_at", "completed_at", "valid_until", "updated_at"),
    "idempotency_keys": ("created_at",),
    "webhook_events": ("occurred_at", "started_at", "finished_at"),
    "webhook_attempts": ("started_at", "finished_at"),
    "optouts": ("created_at",),
    "sticky_senders": ("last_used_at",),
    "url_domains": ("created_at",),
    "short_links": ("created_at",),
    "link_clicks": ("clicked_at",),
    "smpp_binds": ("lease_until", "updated_at"),
    "smpp_parts": ("expires_at", "created_at"),
    "smpp_mo_parts": ("received_at", "expires_at"),
    "smpp_seen": ("expires_at",),
}

_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _id_to_bytes(value: Any) -> Any:
    if isinstance(value, str) and _CANONICAL.fullmatch(value):
        return bytes.fromhex(value.replace("-", ""))
    return value


def _id_to_text(value: Any) -> Any:
    if isinstance(value, bytes) and len(value) == 16:
        h = value.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return value


def _time_to_micros(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    parsed = datetime.fromisoformat(value)
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    delta = parsed - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _time_to_text(value: Any) -> Any:
    if not isinstance(value, int):
        return value
    moment = _EPOCH + timedelta(microseconds=value)
    return moment.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _rewrite(
    id_fn: Callable[[Any], Any], time_fn: Callable[[Any], Any], tables: Sequence[str]
) -> None:
    """Every id and time column of these tables through the two functions (SQLite only)."""
    bind = op.get_bind()
    raw = bind.connection.dbapi_connection
    assert raw is not None
    raw.create_function("signalpost_0006_id", 1, id_fn, deterministic=True)
    raw.create_function("signalpost_0006_time", 1, time_fn, deterministic=True)
    # Parents and children are rewritten one table after the other: the keys agree at commit.
    op.execute("PRAGMA defer_foreign_keys = ON")
    for table in tables:
        sets = [f"{c} = signalpost_0006_id({c})" for c in IDS.get(table, ())]
        sets += [f"{c} = signalpost_0006_time({c})" for c in TIMES.get(table, ())]
        op.execute(f"UPDATE {table} SET {', '.join(sets)}")


def upgrade() -> None:
    op.drop_index("ix_messages_carrier_message_id", table_name="messages")
    if op.get_bind().dialect.name == "sqlite":
        _rewrite(_id_to_bytes, _time_to_micros, sorted(set(IDS) | set(TIMES)))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rewrite(_id_to_text, _time_to_text, sorted(set(IDS) | set(TIMES)))
    op.create_index("ix_messages_carrier_message_id", "messages", ["carrier_message_id"])
