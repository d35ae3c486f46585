"""inbox: messages by number (either side), newest first

Revision ID: 0004
Revises: 0002
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_messages_org_from_received",
        "messages",
        ["organization_id", "from_number", "received_at"],
    )
    op.create_index(
        "ix_messages_org_to_received",
        "messages",
        ["organization_id", "to_number", "received_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_messages_org_to_received", table_name="messages")
    op.drop_index("ix_messages_org_from_received", table_name="messages")
