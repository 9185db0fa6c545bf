"""draw offers, the bot on either side, bot fill by consent, reviewed fair-play flags

Revision ID: 0005_game_play
Revises: 0002, 0003, 0004
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_game_play"
# Merges the three branches: it changes matches (0002), queue tickets (0003) and flags (0004).
down_revision: str | Sequence[str] | None = ("0002", "0003", "0004")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A bot match's human may sit in either seat: the bot's seat is the empty one.
    with op.batch_alter_table("matches") as batch:
        batch.alter_column("first_player_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("draw_offer_side", sa.Integer(), nullable=True))
    with op.batch_alter_table("queue_tickets") as batch:
        batch.add_column(
            sa.Column("bot_fill", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("fair_play_flags") as batch:
        batch.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="open"))
        batch.add_column(sa.Column("reviewed_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("review_note", sa.String(500), nullable=True))
    op.create_index("ix_fair_play_flags_status", "fair_play_flags", ["status", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_fair_play_flags_status", table_name="fair_play_flags")
    with op.batch_alter_table("fair_play_flags") as batch:
        for column in ("review_note", "reviewed_at", "reviewed_by", "status"):
            batch.drop_column(column)
    with op.batch_alter_table("queue_tickets") as batch:
        batch.drop_column("bot_fill")
    with op.batch_alter_table("matches") as batch:
        batch.drop_column("draw_offer_side")
        batch.alter_column("first_player_id", existing_type=sa.Integer(), nullable=False)
