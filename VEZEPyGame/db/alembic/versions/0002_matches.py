"""matches and match_moves

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "matches",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("first_player_id", sa.Integer(), sa.ForeignKey("players.id"), nullable=False),
        sa.Column("second_player_id", sa.Integer(), sa.ForeignKey("players.id"), nullable=True),
        sa.Column("bot_level", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("winner_player_id", sa.Integer(), sa.ForeignKey("players.id"), nullable=True),
        sa.Column("result", sa.String(8), nullable=True),
        sa.Column("end_reason", sa.String(32), nullable=True),
        sa.Column("move_count", sa.Integer(), nullable=False),
        sa.Column("clock_initial_ms", sa.Integer(), nullable=False),
        sa.Column("clock_increment_ms", sa.Integer(), nullable=False),
        sa.Column("first_clock_ms", sa.Integer(), nullable=False),
        sa.Column("second_clock_ms", sa.Integer(), nullable=False),
        sa.Column("turn_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_matches_first_player", "matches", ["first_player_id", "created_at"])
    op.create_index("ix_matches_second_player", "matches", ["second_player_id", "created_at"])
    op.create_index("ix_matches_status_deadline", "matches", ["status", "deadline_at"])
    op.create_table(
        "match_moves",
        sa.Column(
            "match_id",
            sa.String(32),
            sa.ForeignKey("matches.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("ply", sa.Integer(), primary_key=True),
        sa.Column("column", sa.Integer(), nullable=False),
        sa.Column("player_id", sa.Integer(), sa.ForeignKey("players.id"), nullable=True),
        sa.Column("clock_ms", sa.Integer(), nullable=False),
        sa.Column("played_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("match_moves")
    op.drop_index("ix_matches_status_deadline", table_name="matches")
    op.drop_index("ix_matches_second_player", table_name="matches")
    op.drop_index("ix_matches_first_player", table_name="matches")
    op.drop_table("matches")
