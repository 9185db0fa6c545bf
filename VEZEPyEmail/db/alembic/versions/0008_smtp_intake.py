"""smtp_intake: messages the MX accepted, recorded before the 250, until they are delivered

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "smtp_intake",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("envelope_from", sa.String(320), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("peer_ip", sa.String(64), nullable=False),
        sa.Column("helo", sa.String(255), nullable=False),
        sa.Column("received", sa.Text(), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        # Never reuse an id (SQLite does once the table is empty): see models.IntakeMessage.
        sqlite_autoincrement=True,
    )
    op.create_index("ix_smtp_intake_leased", "smtp_intake", ["leased_until"])


def downgrade() -> None:
    op.drop_index("ix_smtp_intake_leased", table_name="smtp_intake")
    op.drop_table("smtp_intake")
