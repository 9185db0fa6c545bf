"""outbound_messages.origin: what queued a message, so the same cause queues it once

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbound_messages") as table:
        table.add_column(sa.Column("origin", sa.String(80), nullable=True))
    # Unique where set; rows without an origin (most) do not collide (NULLs are distinct).
    op.create_index("uq_outbound_messages_origin", "outbound_messages", ["origin"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_outbound_messages_origin", table_name="outbound_messages")
    with op.batch_alter_table("outbound_messages") as table:
        table.drop_column("origin")
