"""Store tables: purchases, what each player owns and wears, and processed webhook events.

The catalogue itself is configuration (`config/store_catalogue.json`); rows name items by
their catalogue id and keep the price they were sold at.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from VEZEPyCore.db.types import UTCDateTime
from VEZEPyGame.db.models import Base

ITEM_ID_MAX_LENGTH = 64
REFERENCE_MAX_LENGTH = 128
EVENT_ID_MAX_LENGTH = 128
#: pending -> completed -> refunded; pending -> failed.
PURCHASE_STATUSES = ("pending", "completed", "failed", "refunded")


class Purchase(Base):
    __tablename__ = "store_purchases"
    __table_args__ = (
        UniqueConstraint("provider_ref", name="uq_store_purchases_provider_ref"),
        Index("ix_store_purchases_player", "player_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"))
    item_id: Mapped[str] = mapped_column(String(ITEM_ID_MAX_LENGTH))
    #: The provider's payment intent id: what its webhook events refer to.
    provider_ref: Mapped[str] = mapped_column(String(REFERENCE_MAX_LENGTH))
    price_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class InventoryItem(Base):
    """One item a player owns; a refund sets `revoked_at` instead of deleting the history."""

    __tablename__ = "store_inventory"
    __table_args__ = (UniqueConstraint("player_id", "item_id", name="uq_store_inventory_item"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"))
    item_id: Mapped[str] = mapped_column(String(ITEM_ID_MAX_LENGTH))
    purchase_id: Mapped[int] = mapped_column(ForeignKey("store_purchases.id", ondelete="CASCADE"))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class EquippedCosmetic(Base):
    """What a player wears in one slot (piece colour, board theme)."""

    __tablename__ = "store_equipped"

    player_id: Mapped[int] = mapped_column(
        ForeignKey("players.id", ondelete="CASCADE"), primary_key=True
    )
    slot: Mapped[str] = mapped_column(String(32), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(ITEM_ID_MAX_LENGTH))
    equipped_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebhookEvent(Base):
    """A provider event already processed: a second delivery of its id is a replay."""

    __tablename__ = "store_webhook_events"

    event_id: Mapped[str] = mapped_column(String(EVENT_ID_MAX_LENGTH), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    provider_ref: Mapped[str] = mapped_column(String(REFERENCE_MAX_LENGTH))
    outcome: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
