"""send: Idempotency-Key records of HTTP sends; joins the 0004 and 0006 branches

Revision ID: 0007
Revises: 0004, 0006
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = ("0004", "0006")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "send_idempotency",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "mailbox_id",
            sa.Integer(),
            sa.ForeignKey("mailboxes.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("mailbox_id", "key", name="uq_send_idempotency_mailbox_key"),
    )
    op.create_index("ix_send_idempotency_expires", "send_idempotency", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_send_idempotency_expires", table_name="send_idempotency")
    op.drop_table("send_idempotency")
