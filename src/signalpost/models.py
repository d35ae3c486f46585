"""All tables, on one MetaData with a naming convention (Alembic migrations are generated from it)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from signalpost.kit.compact import CompactUUID, CompactWord, UTCDateTime
from signalpost.kit.packed import PackedJSON

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = CompactUUID(36)  # VARCHAR(36); 16 bytes on SQLite (kit.compact)


def _timestamps() -> list[Column[object]]:
    return [
        Column("created_at", UTCDateTime(), nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
    ]


# --- accounts ---------------------------------------------------------------------------------

organizations = Table(
    "organizations",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("signing_seed", String(64), nullable=False),  # Ed25519 seed, base64
    Column("public_key", String(64), nullable=False),  # Ed25519 public key, base64 (44 chars)
    Column("created_at", UTCDateTime(), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", ID, primary_key=True),
    Column(
        "organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("key_hash", String(64), nullable=False, unique=True),  # sha256 hex
    Column("prefix", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
)

# Server-wide key/value state shared by every process (e.g. the simulator's chaos settings).
server_state = Table(
    "server_state",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# --- profiles ---------------------------------------------------------------------------------

messaging_profiles = Table(
    "messaging_profiles",
    metadata,
    Column("id", ID, primary_key=True),
    Column(
        "organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("name", String(255), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("webhook_url", Text, nullable=True),
    Column("webhook_failover_url", Text, nullable=True),
    Column("webhook_api_version", String(16), nullable=False, default="2"),
    Column("whitelisted_destinations", JSON, nullable=False),
    Column("alpha_sender", String(11), nullable=True),
    Column("daily_spend_limit", String(32), nullable=True),
    Column("daily_spend_limit_enabled", Boolean, nullable=False, default=False),
    Column("mms_fall_back_to_sms", Boolean, nullable=False, default=False),
    Column("mms_transcoding", Boolean, nullable=False, default=False),
    Column("mobile_only", Boolean, nullable=False, default=False),
    Column("smart_encoding", Boolean, nullable=False, default=False),
    Column("number_pool_settings", JSON, nullable=True),
    Column("url_shortener_settings", JSON, nullable=True),
    Column("redaction_enabled", Boolean, nullable=False, default=False),
    Column("redaction_level", Integer, nullable=False, default=2),
    Column("features", JSON, nullable=True),
    Column("ai_assistant_id", String(64), nullable=True),
    Column("resource_group_id", String(64), nullable=True),
    Column("health_webhook_url", Text, nullable=True),
    Column("v1_secret", String(64), nullable=False),
    *_timestamps(),
    Index("ix_messaging_profiles_org_created", "organization_id", "created_at"),
)

autoresp_configs = Table(
    "autoresp_configs",
    metadata,
    Column("id", ID, primary_key=True),
    Column(
        "messaging_profile_id",
        ID,
        ForeignKey("messaging_profiles.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("op", String(8), nullable=False),
    Column("keywords", JSON, nullable=False),
    Column("country_code", String(8), nullable=False),
    Column("resp_text", Text, nullable=True),
    *_timestamps(),
)

# --- numbers ----------------------------------------------------------------------------------

phone_numbers = Table(
    "phone_numbers",
    metadata,
    Column("id", String(24), primary_key=True),
    Column(
        "organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("phone_number", String(20), nullable=False, unique=True),
    Column("country_code", String(2), nullable=False),
    Column("type", String(16), nullable=False),  # long-code | toll-free
    Column("mobile", Boolean, nullable=False, default=False),
    Column(
        "messaging_profile_id",
        ID,
        ForeignKey("messaging_profiles.id", ondelete="SET NULL"),
        nullable=True,
        index=True,
    ),
    Column("messaging_product", String(32), nullable=False, default="P2P"),
    Column("traffic_type", String(32), nullable=False, default="P2P"),
    Column("tags", JSON, nullable=False),
    Column("whatsapp_enabled", Boolean, nullable=False, default=False),
    Column("rate_limit", Float, nullable=True),  # messages/s override for this sender
    *_timestamps(),
    Index("ix_phone_numbers_org_number", "organization_id", "phone_number"),
)

short_codes = Table(
    "short_codes",
    metadata,
    Column("id", ID, primary_key=True),
    Column(
        "organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("short_code", String(16), nullable=False),
    Column("country_code", String(2), nullable=False),
    Column(
        "messaging_profile_id",
        ID,
        ForeignKey("messaging_profiles.id", ondelete="SET NULL"),
        nullable=True,
        index=True,
    ),
    Column("tags", JSON, nullable=False),
    Column("rate_limit", Float, nullable=True),
    *_timestamps(),
    UniqueConstraint("short_code", "country_code", name="uq_short_codes_code_country"),
)

alphanumeric_sender_ids = Table(
    "alphanumeric_sender_ids",
    metadata,
    Column("id", ID, primary_key=True),
    Column(
        "organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("alphanumeric_sender_id", String(11), nullable=False),
    Column(
        "messaging_profile_id",
        ID,
        ForeignKey("messaging_profiles.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("us_long_code_fallback", String(20), nullable=True),
    *_timestamps(),
    UniqueConstraint(
        "messaging_profile_id", "alphanumeric_sender_id", name="uq_alphanumeric_sender_ids_profile"
    ),
)

number_orders = Table(
    "number_orders",
    metadata,
    Column("id", ID, primary_key=True),
    Column(
        "organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("status", String(16), nullable=False),
    Column("messaging_profile_id", ID, nullable=True),
    Column("connection_id", String(64), nullable=True),
    Column("billing_group_id", String(64), nullable=True),
    Column("customer_reference", String(255), nullable=True),
    Column("phone_numbers", JSON, nullable=False),
    *_timestamps(),
)

bulk_updates = Table(
    "bulk_updates",
    metadata,
    Column("order_id", ID, primary_key=True),
    Column(
        "organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("messaging_profile_id", ID, nullable=True),
    Column("assign_only", Boolean, nullable=False, default=False),
    Column("numbers", JSON, nullable=False),
    Column("success", JSON, nullable=False),
    Column("pending", JSON, nullable=False),
    Column("failed", JSON, nullable=False),
    *_timestamps(),
)

# --- durable job queue ------------------------------------------------------------------------

jobs = Table(
    "jobs",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("kind", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),  # queued | running | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False),
    Column("run_at", UTCDateTime(), nullable=False),
    Column("locked_until", UTCDateTime(), nullable=True),
    Column("locked_by", String(64), nullable=True),
    # Jobs sharing a group key run one at a time, in id order (e.g. the webhooks of one message).
    Column("group_key", String(80), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_jobs_status_run_at", "status", "run_at"),
    Index("ix_jobs_group_key", "group_key", "id"),
)

# --- messages ---------------------------------------------------------------------------------

messages = Table(
    "messages",
    metadata,
    Column("id", ID, primary_key=True),
    Column(
        "organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("direction", CompactWord(8), nullable=False),  # outbound | inbound (kit.compact)
    Column("type", CompactWord(10), nullable=False),  # SMS | MMS | WHATSAPP
    Column("messaging_profile_id", ID, nullable=True),  # no query looks messages up by it
    Column(
        "sender_kind", CompactWord(16), nullable=True
    ),  # long_code|toll_free|short_code|alphanumeric
    Column("from_number", String(64), nullable=False),
    Column("from_carrier", CompactWord(100), nullable=False, default=""),
    Column("from_line_type", CompactWord(32), nullable=False, default=""),
    Column("from_status", CompactWord(32), nullable=True),  # inbound only
    Column("to_number", String(64), nullable=False),
    Column("to_status", CompactWord(32), nullable=False),
    Column("to_carrier", CompactWord(100), nullable=False, default=""),
    Column("to_line_type", CompactWord(32), nullable=False, default=""),
    Column("cc", JSON, nullable=False),
    Column("text", Text, nullable=True),
    Column("original_text", Text, nullable=True),
    Column("subject", Text, nullable=True),
    Column("media", JSON, nullable=False),
    Column("webhook_url", Text, nullable=True),
    Column("webhook_failover_url", Text, nullable=True),
    Column("use_profile_webhooks", Boolean, nullable=False, default=True),
    Column("encoding", CompactWord(16), nullable=False),
    Column("parts", Integer, nullable=False),
    Column("num_chars", Integer, nullable=False),
    Column("smart_encoding_applied", Boolean, nullable=False, default=False),
    Column("tags", JSON, nullable=False),
    Column("cost", PackedJSON, nullable=True),  # compressed on SQLite (kit.packed)
    Column("cost_breakdown", PackedJSON, nullable=True),
    Column("errors", JSON, nullable=False),
    Column("body", JSON, nullable=True),
    Column("request", PackedJSON, nullable=True),  # the accepted request fields, as sent
    Column("group_id", ID, nullable=True),
    Column("autoresponse_type", String(16), nullable=True),
    Column("carrier_message_id", CompactUUID(64), nullable=True),  # never looked up by
    Column("carrier_attempts", Integer, nullable=False, default=0),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("send_at", UTCDateTime(), nullable=True),
    Column("sent_at", UTCDateTime(), nullable=True),
    Column("completed_at", UTCDateTime(), nullable=True),
    Column("valid_until", UTCDateTime(), nullable=True),
    Column("wait_seconds", Float, nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_messages_org_received", "organization_id", "received_at"),
    # Only the messages of a group (most have none) are looked up by it (migration 0006).
    Index(
        "ix_messages_group_id",
        "group_id",
        sqlite_where=text("group_id IS NOT NULL"),
        postgresql_where=text("group_id IS NOT NULL"),
    ),
    Index("ix_messages_org_updated", "organization_id", "updated_at"),  # the inbox's change feed
    Index("ix_messages_from_completed", "from_number", "completed_at"),  # number health, pools
    # The inbox: messages of one number, and conversations, newest first (migration 0004).
    Index("ix_messages_org_from_received", "organization_id", "from_number", "received_at"),
    Index("ix_messages_org_to_received", "organization_id", "to_number", "received_at"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column(
        "organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Rate-limit state: the earliest time the next message may leave, per limiter key.
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("key", String(120), primary_key=True),
    Column("next_at", Float, nullable=False),  # unix seconds
)

# --- webhooks ---------------------------------------------------------------------------------

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", ID, primary_key=True),
    Column(
        "organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("event_type", CompactWord(64), nullable=False),  # kit.compact, as the next two
    Column("message_id", ID, nullable=True, index=True),
    # The `data` object of the body, compressed (kit.packed): most of an event's bytes.
    Column("payload", PackedJSON, nullable=False),
    Column("envelope", CompactWord(8), nullable=False, default="event"),  # event | bare
    Column("urls", JSON, nullable=False),  # ordered [primary, failover] candidates
    Column("status", CompactWord(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, default=0),
    # Where it was delivered: the URL of its last 2xx attempt (webhooks.repository.DELIVERED_TO).
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("started_at", UTCDateTime(), nullable=True),  # when the first attempt began
    Column("finished_at", UTCDateTime(), nullable=True),
    Index("ix_webhook_events_org_occurred", "organization_id", "occurred_at"),
)

# Keyed by (event, attempt number): an attempt is recorded once, even when a crashed worker's job
# is run again.
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column(
        "event_id",
        ID,
        ForeignKey("webhook_events.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("attempt", Integer, primary_key=True, autoincrement=False),
    Column("url", Text, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Float, nullable=True),
    Column("response_body", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("request_headers", PackedJSON, nullable=True),  # [[name, value], ...] as sent
    Column("response_headers", PackedJSON, nullable=True),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=False),
    Index("ix_webhook_attempts_finished_at", "finished_at"),  # the inbox's change feed
)

# --- opt-outs ---------------------------------------------------------------------------------

optouts = Table(
    "optouts",
    metadata,
    Column("id", ID, primary_key=True),
    Column(
        "organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    ),
    Column(
        "messaging_profile_id",
        ID,
        ForeignKey("messaging_profiles.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("from_number", String(32), nullable=False),  # the handset that opted out
    Column("to_number", String(32), nullable=False),  # the number it wrote to
    Column("keyword", String(32), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("messaging_profile_id", "from_number", name="uq_optouts_profile_from"),
)

# --- number pool ------------------------------------------------------------------------------

sticky_senders = Table(
    "sticky_senders",
    metadata,
    Column(
        "messaging_profile_id",
        ID,
        ForeignKey("messaging_profiles.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("destination", String(32), primary_key=True),
    Column("phone_number", String(20), nullable=False),
    Column("last_used_at", UTCDateTime(), nullable=False),
)

# --- links ------------------------------------------------------------------------------------

url_domains = Table(
    "url_domains",
    metadata,
    Column("id", ID, primary_key=True),
    Column(
        "organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=True
    ),
    Column("url_domain", String(255), nullable=False),
    Column("scheme", String(8), nullable=False, default="https"),  # of the short links built on it
    Column("use_case", String(64), nullable=False, default="link_shortening"),
    Column("created_at", UTCDateTime(), nullable=False),
)

short_links = Table(
    "short_links",
    metadata,
    Column("code", String(32), primary_key=True),
    Column(
        "organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("message_id", ID, nullable=False, index=True),
    Column("messaging_profile_id", ID, nullable=True),
    Column("recipient", String(32), nullable=False),
    Column("original_url", Text, nullable=False),
    Column("domain", String(255), nullable=False),
    Column("prefix", String(64), nullable=False, default=""),
    Column("short_url", Text, nullable=False),
    Column("send_webhooks", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

link_clicks = Table(
    "link_clicks",
    metadata,
    Column("id", ID, primary_key=True),
    Column(
        "code",
        String(32),
        ForeignKey("short_links.code", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("clicked_at", UTCDateTime(), nullable=False),
    Column("user_agent", Text, nullable=True),
    Column("ip", String(64), nullable=True),
    Column("is_bot", Boolean, nullable=False, default=False),
)

# --- carriers: SMPP -----------------------------------------------------------------------------

# A configured bind and its lease: the process in `holder` holds the bind until `lease_until`
# (renewed while it lives); `state` and `stats` are what it last reported (carriers status).
smpp_binds = Table(
    "smpp_binds",
    metadata,
    Column("key", String(200), primary_key=True),  # carrier/index/mode
    Column("carrier", String(60), nullable=False, index=True),
    Column("holder", String(200), nullable=True),
    Column("lease_until", UTCDateTime(), nullable=True),
    Column("state", String(20), nullable=False),
    Column("stats", JSON, nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# The correlator: a carrier's message id → (message, part), written when submit_sm_resp accepted
# the part; a receipt on any bind, in any process, finds its part here. `expires_at` (the message's
# validity) ends a part that never got a receipt as `delivery_unconfirmed`.
smpp_parts = Table(
    "smpp_parts",
    metadata,
    Column("carrier", String(60), primary_key=True),
    Column("carrier_message_id", String(100), primary_key=True),
    Column("message_id", ID, nullable=False, index=True),
    Column("part", Integer, nullable=False),
    Column("parts", Integer, nullable=False),
    Column("status", String(30), nullable=False),  # sent, then the receipt's final status
    Column("error_code", String(10), nullable=True),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Parts of concatenated inbound messages (MO) waiting for the rest, from any bind or process. A
# part received twice is stored once (the key); `done` parts stay until `expires_at` so that a
# repeated part does not start the message again.
smpp_mo_parts = Table(
    "smpp_mo_parts",
    metadata,
    Column("key", String(200), primary_key=True),  # carrier/source/destination/reference/total
    Column("seq", Integer, primary_key=True),
    Column("total", Integer, nullable=False),
    Column("source", String(32), nullable=False),
    Column("destination", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("done", Boolean, nullable=False, default=False),
    Column("received_at", UTCDateTime(), nullable=False, index=True),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
)

# Inbound deliver_sm seen recently (a digest of the PDU's content): one repeated by the SMSC is
# acknowledged and not delivered twice.
smpp_seen = Table(
    "smpp_seen",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
)
