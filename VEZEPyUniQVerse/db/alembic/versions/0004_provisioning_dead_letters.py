"""provisioning tasks may be given up on: status 'failed' (the dead letters)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _status_check(allowed: str) -> None:
    # SQLite cannot alter a constraint: batch mode copies the table with the new one.
    with op.batch_alter_table("provisioning_tasks", schema=None) as batch_op:
        batch_op.drop_constraint("ck_provisioning_tasks_status", type_="check")
        batch_op.create_check_constraint("ck_provisioning_tasks_status", f"status IN ({allowed})")


def upgrade() -> None:
    _status_check("'pending', 'done', 'failed'")


def downgrade() -> None:
    op.execute("UPDATE provisioning_tasks SET status = 'pending' WHERE status = 'failed'")
    _status_check("'pending', 'done'")
