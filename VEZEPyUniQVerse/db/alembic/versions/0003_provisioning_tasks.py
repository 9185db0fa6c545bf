"""provisioning tasks: the durable per-target queue that sign-up fills

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
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
        "provisioning_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("handle", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=16), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False, server_default=""),
        sa.Column("status", sa.String(length=16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_token", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("handle", "target", name="uq_provisioning_tasks_handle_target"),
        sa.CheckConstraint("target IN ('email', 'game')", name="ck_provisioning_tasks_target"),
        sa.CheckConstraint("status IN ('pending', 'done')", name="ck_provisioning_tasks_status"),
    )
    with op.batch_alter_table("provisioning_tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_provisioning_tasks_due", ["status", "next_attempt_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("provisioning_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_provisioning_tasks_due")
    op.drop_table("provisioning_tasks")
