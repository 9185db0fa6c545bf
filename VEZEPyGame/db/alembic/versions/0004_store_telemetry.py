"""store, telemetry and fair-play flags, match-summary outbox

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLAYER_FK = "players.id"


def _when(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "store_purchases",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "player_id", sa.Integer(), sa.ForeignKey(PLAYER_FK, ondelete="CASCADE"), nullable=False
        ),
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column("provider_ref", sa.String(128), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _when("created_at"),
        _when("completed_at", nullable=True),
        _when("refunded_at", nullable=True),
        sa.UniqueConstraint("provider_ref", name="uq_store_purchases_provider_ref"),
    )
    op.create_index("ix_store_purchases_player", "store_purchases", ["player_id", "created_at"])
    op.create_table(
        "store_inventory",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "player_id", sa.Integer(), sa.ForeignKey(PLAYER_FK, ondelete="CASCADE"), nullable=False
        ),
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column(
            "purchase_id",
            sa.Integer(),
            sa.ForeignKey("store_purchases.id", ondelete="CASCADE"),
            nullable=False,
        ),
        _when("acquired_at"),
        _when("revoked_at", nullable=True),
        sa.UniqueConstraint("player_id", "item_id", name="uq_store_inventory_item"),
    )
    op.create_table(
        "store_equipped",
        sa.Column(
            "player_id",
            sa.Integer(),
            sa.ForeignKey(PLAYER_FK, ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("slot", sa.String(32), primary_key=True),
        sa.Column("item_id", sa.String(64), nullable=False),
        _when("equipped_at"),
    )
    op.create_table(
        "store_webhook_events",
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("provider_ref", sa.String(128), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        _when("received_at"),
    )
    op.create_table(
        "telemetry_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "player_id", sa.Integer(), sa.ForeignKey(PLAYER_FK, ondelete="CASCADE"), nullable=False
        ),
        sa.Column("batch_id", sa.String(32), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("match_id", sa.String(64), nullable=True),
        _when("client_ts"),
        _when("received_at"),
        sa.Column("payload", sa.JSON(), nullable=False),
    )
    op.create_index(
        "ix_telemetry_events_player_received", "telemetry_events", ["player_id", "received_at"]
    )
    op.create_index(
        "ix_telemetry_events_player_type", "telemetry_events", ["player_id", "type", "received_at"]
    )
    op.create_index("ix_telemetry_events_received", "telemetry_events", ["received_at"])
    op.create_table(
        "fair_play_flags",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "player_id", sa.Integer(), sa.ForeignKey(PLAYER_FK, ondelete="CASCADE"), nullable=False
        ),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("window_key", sa.String(64), nullable=False),
        sa.Column("detail", sa.String(500), nullable=False),
        sa.Column("match_id", sa.String(64), nullable=True),
        _when("created_at"),
        sa.UniqueConstraint("player_id", "rule", "window_key", name="uq_fair_play_flags_window"),
    )
    op.create_index("ix_fair_play_flags_created", "fair_play_flags", ["created_at"])
    op.create_table(
        "match_summary_outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("match_id", sa.String(64), nullable=False),
        sa.Column(
            "player_id", sa.Integer(), sa.ForeignKey(PLAYER_FK, ondelete="CASCADE"), nullable=False
        ),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(500), nullable=True),
        _when("next_attempt_at"),
        sa.Column("lease_token", sa.String(32), nullable=True),
        _when("created_at"),
        _when("updated_at"),
        sa.UniqueConstraint("match_id", "player_id", name="uq_match_summary_outbox_player"),
    )
    op.create_index(
        "ix_match_summary_outbox_due", "match_summary_outbox", ["status", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_match_summary_outbox_due", table_name="match_summary_outbox")
    op.drop_table("match_summary_outbox")
    op.drop_index("ix_fair_play_flags_created", table_name="fair_play_flags")
    op.drop_table("fair_play_flags")
    op.drop_index("ix_telemetry_events_received", table_name="telemetry_events")
    op.drop_index("ix_telemetry_events_player_type", table_name="telemetry_events")
    op.drop_index("ix_telemetry_events_player_received", table_name="telemetry_events")
    op.drop_table("telemetry_events")
    op.drop_table("store_webhook_events")
    op.drop_table("store_equipped")
    op.drop_table("store_inventory")
    op.drop_index("ix_store_purchases_player", table_name="store_purchases")
    op.drop_table("store_purchases")
