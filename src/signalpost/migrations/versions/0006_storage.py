"""storage: ids, times and recurring words stored compactly on SQLite; fewer index entries

On SQLite every id column holding a canonical UUID is rewritten as its 16 bytes, every time column
as integer microseconds since 1970, and the columns of a few recurring words (statuses, directions,
event types, ...) hold one character per such word (`signalpost.kit.compact`); the downgrade writes
them back as text. PostgreSQL's columns keep their types. On both: the index on messages' carrier
ids (no query looked messages up by it) goes, the one on their group ids keeps only the messages of
a group; webhook attempts lose their own id (never shown by the API, never looked up): their key is
(event_id, attempt), unique already; an attempt to its event's first URL stores the URL as ''
(read back from the event); webhook events lose `delivered_to`, the URL of their last 2xx
attempt, which is read from the attempts instead. The downgrade gives attempts new random ids and
fills `delivered_to` again.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import signalpost.kit.db
from signalpost.kit import compact

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
    "messages": ("id", "organization_id", "messaging_profile_id", "group_id", "carrier_message_id"),
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

# Columns of recurring words, and the words stored as one character each (`chr(1 + index)`).
WORD_COLUMNS: dict[str, tuple[str, ...]] = {
    "webhook_events": ("event_type", "status", "envelope"),
    "messages": (
        "direction",
        "type",
        "sender_kind",
        "from_carrier",
        "from_line_type",
        "from_status",
        "to_status",
        "to_carrier",
        "to_line_type",
        "encoding",
    ),
}
# The stored forms are those of `signalpost.kit.compact`, which never change (rows are read with
# them): its functions convert here too.


def _time_to_micros(value: Any) -> Any:
    return compact.micros(compact.from_text(value)) if isinstance(value, str) else value


def _time_to_text(value: Any) -> Any:
    if not isinstance(value, int):
        return value
    moment = compact.from_micros(value)
    return moment.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _rewrite(*, upgrade: bool) -> None:
    """Every id, time and word column into its compact form or back (SQLite only)."""
    bind = op.get_bind()
    raw = bind.connection.dbapi_connection
    assert raw is not None
    fns = (
        (compact.uuid_bytes, _time_to_micros, compact.word_char)
        if upgrade
        else (compact.uuid_str, _time_to_text, compact.word_str)
    )
    for name, fn in zip(("id", "time", "word"), fns, strict=True):
        raw.create_function(f"signalpost_0006_{name}", 1, fn, deterministic=True)
    # Parents and children are rewritten one table after the other: the keys agree at commit.
    op.execute("PRAGMA defer_foreign_keys = ON")
    for table in sorted(set(IDS) | set(TIMES)):
        sets = [f"{c} = signalpost_0006_id({c})" for c in IDS.get(table, ())]
        sets += [f"{c} = signalpost_0006_time({c})" for c in TIMES.get(table, ())]
        sets += [f"{c} = signalpost_0006_word({c})" for c in WORD_COLUMNS.get(table, ())]
        op.execute(f"UPDATE {table} SET {', '.join(sets)}")


_ATTEMPT_COLUMNS = (
    "event_id, attempt, url, status_code, latency_ms, response_body, error, request_headers,"
    " response_headers, started_at, finished_at"
)


def _attempts_table(name: str, *, with_id: bool) -> None:
    """A webhook attempts table on SQLite: this revision's (keyed by event and attempt) or the one
    before (its own id, (event_id, attempt) unique)."""
    utc = signalpost.kit.db.UTCDateTime
    key: list[sa.Constraint] = (
        [
            sa.PrimaryKeyConstraint("id", name="pk_webhook_attempts"),
            sa.UniqueConstraint("event_id", "attempt", name="uq_webhook_attempts_event_attempt"),
        ]
        if with_id
        else [sa.PrimaryKeyConstraint("event_id", "attempt", name="pk_webhook_attempts")]
    )
    op.create_table(
        name,
        *([sa.Column("id", sa.String(length=36), nullable=False)] if with_id else []),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("request_headers", sa.JSON(), nullable=True),
        sa.Column("response_headers", sa.JSON(), nullable=True),
        sa.Column("started_at", utc(timezone=True), nullable=False),
        sa.Column("finished_at", utc(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["webhook_events.id"],
            name="fk_webhook_attempts_event_id_webhook_events",
            ondelete="CASCADE",
        ),
        *key,
    )


def _rebuild_attempts_sqlite(*, with_id: bool) -> None:
    _attempts_table("_webhook_attempts_0006", with_id=with_id)
    columns = ("id, " if with_id else "") + _ATTEMPT_COLUMNS
    source = ("randomblob(16), " if with_id else "") + _ATTEMPT_COLUMNS
    op.execute(
        f"INSERT INTO _webhook_attempts_0006 ({columns}) SELECT {source} FROM webhook_attempts"
    )
    op.drop_table("webhook_attempts")
    op.rename_table("_webhook_attempts_0006", "webhook_attempts")
    op.create_index("ix_webhook_attempts_finished_at", "webhook_attempts", ["finished_at"])


def _group_index(*, partial: bool) -> None:
    where = sa.text("group_id IS NOT NULL") if partial else None
    op.create_index(
        "ix_messages_group_id",
        "messages",
        ["group_id"],
        sqlite_where=where,
        postgresql_where=where,
    )


_FILL_DELIVERED_TO = (
    "UPDATE webhook_events SET delivered_to = (SELECT a.url FROM webhook_attempts a"
    " WHERE a.event_id = webhook_events.id AND a.status_code >= 200 AND a.status_code < 300"
    " ORDER BY a.attempt DESC LIMIT 1)"
)


def _first_url(dialect: str) -> str:
    """SQL: the first URL of an attempt's event."""
    first = "json_extract(e.urls, '$[0]')" if dialect == "sqlite" else "(e.urls ->> 0)"
    return f"(SELECT {first} FROM webhook_events e WHERE e.id = webhook_attempts.event_id)"


def upgrade() -> None:
    op.drop_index("ix_messages_carrier_message_id", table_name="messages")
    op.drop_index("ix_messages_group_id", table_name="messages")
    _group_index(partial=True)
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE webhook_events DROP COLUMN delivered_to")
        _rewrite(upgrade=True)
        _rebuild_attempts_sqlite(with_id=False)
        op.execute(f"UPDATE webhook_attempts SET url = '' WHERE url = {_first_url('sqlite')}")
        return
    op.drop_column("webhook_events", "delivered_to")
    op.drop_constraint("pk_webhook_attempts", "webhook_attempts", type_="primary")
    op.drop_constraint("uq_webhook_attempts_event_attempt", "webhook_attempts", type_="unique")
    op.drop_column("webhook_attempts", "id")
    op.create_primary_key("pk_webhook_attempts", "webhook_attempts", ["event_id", "attempt"])
    op.execute(f"UPDATE webhook_attempts SET url = '' WHERE url = {_first_url('postgresql')}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute(f"UPDATE webhook_attempts SET url = {_first_url(dialect)} WHERE url = ''")
    if dialect == "sqlite":
        _rebuild_attempts_sqlite(with_id=True)
        _rewrite(upgrade=False)
    else:
        op.drop_constraint("pk_webhook_attempts", "webhook_attempts", type_="primary")
        op.add_column("webhook_attempts", sa.Column("id", sa.String(length=36), nullable=True))
        op.execute("UPDATE webhook_attempts SET id = gen_random_uuid()::text")
        op.alter_column("webhook_attempts", "id", nullable=False)
        op.create_primary_key("pk_webhook_attempts", "webhook_attempts", ["id"])
        op.create_unique_constraint(
            "uq_webhook_attempts_event_attempt", "webhook_attempts", ["event_id", "attempt"]
        )
    op.add_column("webhook_events", sa.Column("delivered_to", sa.Text(), nullable=True))
    op.execute(_FILL_DELIVERED_TO)
    op.create_index("ix_messages_carrier_message_id", "messages", ["carrier_message_id"])
    op.drop_index("ix_messages_group_id", table_name="messages")
    _group_index(partial=False)
