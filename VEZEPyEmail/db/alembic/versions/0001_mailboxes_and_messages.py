"""mailboxes and messages

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mailboxes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("address", sa.String(320), nullable=False, unique=True),
        sa.Column("display_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "mailbox_id",
            sa.Integer(),
            sa.ForeignKey("mailboxes.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("folder", sa.String(128), nullable=False, server_default="INBOX"),
        sa.Column("message_id_header", sa.String(998), nullable=True),
        sa.Column("subject", sa.String(998), nullable=False, server_default=""),
        sa.Column("from_addr", sa.String(998), nullable=False, server_default=""),
        sa.Column("to_addrs", sa.Text(), nullable=False, server_default=""),
        sa.Column("date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("snippet", sa.String(300), nullable=False, server_default=""),
        sa.Column("body_text", sa.Text(), nullable=False, server_default=""),
        sa.Column("size", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("spam_score", sa.Float(), nullable=False, server_default="0"),
        sa.Column("seen", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("flagged", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("answered", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("draft", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("labels", sa.JSON(), nullable=False),
    )
    op.create_index(
        "ix_messages_mailbox_folder_received",
        "messages",
        ["mailbox_id", "folder", "received_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_messages_mailbox_folder_received", table_name="messages")
    op.drop_table("messages")
    op.drop_table("mailboxes")
