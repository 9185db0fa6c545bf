"""The outbox of match-summary mails: written after a match ends, worked off by a worker.

A row is the finished mail (recipient, subject, text), so a retry sends exactly what was
composed, whatever has changed since. `message_id` is fixed per (match, player): the Email
service's duplicate Message-ID guard then keeps a retried delivery out of the inbox twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from VEZEPyCore.db.types import UTCDateTime
from VEZEPyGame.db.models import Base


class SummaryMail(Base):
    __tablename__ = "match_summary_outbox"
    __table_args__ = (
        UniqueConstraint("match_id", "player_id", name="uq_match_summary_outbox_player"),
        Index("ix_match_summary_outbox_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    match_id: Mapped[str] = mapped_column(String(64))
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(200))
    #: pending -> sent
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
