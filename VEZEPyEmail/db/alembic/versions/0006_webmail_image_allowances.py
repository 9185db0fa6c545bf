"""webmail: remote images allowed per message or per sender; unread-count index

Revision ID: 0006
Revises: 0003
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webmail_image_allowances",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "mailbox_id",
            sa.Integer(),
            sa.ForeignKey("mailboxes.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("value", sa.String(320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("mailbox_id", "kind", "value", name="uq_webmail_image_allowances"),
        sa.CheckConstraint(
            "kind IN ('message', 'sender')", name="ck_webmail_image_allowances_kind"
        ),
    )

    # The sidebar counts unread messages per folder on every live event: an index that
    # answers it from the unread entries of one mailbox alone.
    op.create_index("ix_messages_mailbox_seen_folder", "messages", ["mailbox_id", "seen", "folder"])


def downgrade() -> None:
    op.drop_index("ix_messages_mailbox_seen_folder", table_name="messages")
    op.drop_table("webmail_image_allowances")
