"""outbound delivery queue

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbound_messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("blob_key", sa.String(64), nullable=True),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.Column("envelope_from", sa.String(320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "outbound_queue",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "message_id",
            sa.Integer(),
            sa.ForeignKey("outbound_messages.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("envelope_from", sa.String(320), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_token", sa.String(64), nullable=True),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'sending', 'sent', 'failed')", name="ck_outbound_queue_status"
        ),
    )
    op.create_index("ix_outbound_queue_due", "outbound_queue", ["status", "next_attempt_at"])
    op.create_index("ix_outbound_queue_message", "outbound_queue", ["message_id"])


def downgrade() -> None:
    op.drop_index("ix_outbound_queue_message", table_name="outbound_queue")
    op.drop_index("ix_outbound_queue_due", table_name="outbound_queue")
    op.drop_table("outbound_queue")
    op.drop_table("outbound_messages")
