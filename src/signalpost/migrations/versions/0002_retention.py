"""storage: two indexes gone

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05 08:20:00

`ix_webhook_attempts_event_id` is dropped: the unique (event_id, attempt) index serves every lookup
by event; `ix_messages_messaging_profile_id` too: no query looks messages up by profile. (The
webhook payload and header columns, and messages' `cost`, `cost_breakdown` and `request`, now hold
`kit.packed.PackedJSON`: compressed on SQLite under the same declared type JSON, so no table
changes.)
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_webhook_attempts_event_id", table_name="webhook_attempts")
    op.drop_index("ix_messages_messaging_profile_id", table_name="messages")


def downgrade() -> None:
    op.create_index("ix_webhook_attempts_event_id", "webhook_attempts", ["event_id"], unique=False)
    op.create_index(
        "ix_messages_messaging_profile_id", "messages", ["messaging_profile_id"], unique=False
    )
