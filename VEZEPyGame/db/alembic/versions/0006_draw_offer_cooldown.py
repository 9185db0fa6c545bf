"""draw offer cooldown: when each side last offered a draw

Revision ID: 0006_draw_cooldown
Revises: 0005_game_play
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_draw_cooldown"
down_revision: str | Sequence[str] | None = "0005_game_play"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL: the side has not offered a draw in this match (so it may).
    with op.batch_alter_table("matches") as batch:
        batch.add_column(sa.Column("first_draw_offer_ply", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("second_draw_offer_ply", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("matches") as batch:
        batch.drop_column("second_draw_offer_ply")
        batch.drop_column("first_draw_offer_ply")
