"""SMPP: bind leases, the carrier message id correlator, inbound part reassembly, duplicates

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import signalpost.kit.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = signalpost.kit.db.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "smpp_binds",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("carrier", sa.String(length=60), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=True),
        sa.Column("lease_until", UTC(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=True),
        sa.Column("updated_at", UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_smpp_binds")),
    )
    op.create_index(op.f("ix_smpp_binds_carrier"), "smpp_binds", ["carrier"], unique=False)
    op.create_table(
        "smpp_parts",
        sa.Column("carrier", sa.String(length=60), nullable=False),
        sa.Column("carrier_message_id", sa.String(length=100), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("error_code", sa.String(length=10), nullable=True),
        sa.Column("expires_at", UTC(timezone=True), nullable=False),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("carrier", "carrier_message_id", name=op.f("pk_smpp_parts")),
    )
    op.create_index(op.f("ix_smpp_parts_expires_at"), "smpp_parts", ["expires_at"], unique=False)
    op.create_index(op.f("ix_smpp_parts_message_id"), "smpp_parts", ["message_id"], unique=False)
    op.create_table(
        "smpp_mo_parts",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("destination", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("received_at", UTC(timezone=True), nullable=False),
        sa.Column("expires_at", UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", "seq", name=op.f("pk_smpp_mo_parts")),
    )
    op.create_index(
        op.f("ix_smpp_mo_parts_expires_at"), "smpp_mo_parts", ["expires_at"], unique=False
    )
    op.create_index(
        op.f("ix_smpp_mo_parts_received_at"), "smpp_mo_parts", ["received_at"], unique=False
    )
    op.create_table(
        "smpp_seen",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("expires_at", UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_smpp_seen")),
    )
    op.create_index(op.f("ix_smpp_seen_expires_at"), "smpp_seen", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_smpp_seen_expires_at"), table_name="smpp_seen")
    op.drop_table("smpp_seen")
    op.drop_index(op.f("ix_smpp_mo_parts_received_at"), table_name="smpp_mo_parts")
    op.drop_index(op.f("ix_smpp_mo_parts_expires_at"), table_name="smpp_mo_parts")
    op.drop_table("smpp_mo_parts")
    op.drop_index(op.f("ix_smpp_parts_message_id"), table_name="smpp_parts")
    op.drop_index(op.f("ix_smpp_parts_expires_at"), table_name="smpp_parts")
    op.drop_table("smpp_parts")
    op.drop_index(op.f("ix_smpp_binds_carrier"), table_name="smpp_binds")
    op.drop_table("smpp_binds")
