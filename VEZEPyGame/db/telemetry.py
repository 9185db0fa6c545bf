"""Telemetry tables: client events as received, and the fair-play flags rules raise.

`match_id` is a plain string (the matches table lives on another migration branch), so no
foreign key ties these rows to it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from VEZEPyCore.db.types import UTCDateTime
from VEZEPyGame.db.models import Base

EVENT_TYPE_MAX_LENGTH = 32
RULE_MAX_LENGTH = 32


class TelemetryEvent(Base):
    __tablename__ = "telemetry_events"
    __table_args__ = (
        # The rules count a player's recent events (by our clock), all and by type.
        Index("ix_telemetry_events_player_received", "player_id", "received_at"),
        Index("ix_telemetry_events_player_type", "player_id", "type", "received_at"),
        Index("ix_telemetry_events_received", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"))
    #: The batch (one POST) the event came in, so a batch can be found and audited as a whole.
    batch_id: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(EVENT_TYPE_MAX_LENGTH))
    match_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: When the client says it happened (its clock); `received_at` is ours.
    client_ts: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class FairPlayFlag(Base):
    """One rule's finding about one player; raised once per rule and window (`window_key`)."""

    __tablename__ = "fair_play_flags"
    __table_args__ = (
        UniqueConstraint("player_id", "rule", "window_key", name="uq_fair_play_flags_window"),
        Index("ix_fair_play_flags_created", "created_at"),
        Index("ix_fair_play_flags_status", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"))
    rule: Mapped[str] = mapped_column(String(RULE_MAX_LENGTH))
    window_key: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(String(500))
    match_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: "open" until an admin reviews it: "resolved" (acted on) or "dismissed" (a false alarm).
    status: Mapped[str] = mapped_column(String(16), default="open", server_default="open")
    #: Who reviewed it (the admin's handle) and when, with their note: the audit trail.
    reviewed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    review_note: Mapped[str | None] = mapped_column(String(500), nullable=True)
