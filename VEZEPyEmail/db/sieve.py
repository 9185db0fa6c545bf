"""Sieve tables: each mailbox's active script and the vacation replies it has sent.

Kept beside `models.py` (same Base, so the one Alembic metadata sees them) because they belong
to the rules capability (services/sieve) rather than to the core mail store.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from VEZEPyCore.db.types import UTCDateTime
from VEZEPyEmail.db.models import Base


class SieveScript(Base):
    """A mailbox's one active Sieve script (RFC 5228), stored as the text the user gave."""

    __tablename__ = "sieve_scripts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(
        ForeignKey("mailboxes.id", ondelete="CASCADE"), unique=True
    )
    script: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: Why the last delivery could not follow the script as written (shown by GET /api/rules).
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class VacationReply(Base):
    """The last vacation reply to one sender (RFC 5230 section 4.2: at most one per :days)."""

    __tablename__ = "sieve_vacation_replies"
    __table_args__ = (
        UniqueConstraint(
            "mailbox_id", "sender", "handle", name="uq_sieve_vacation_mailbox_sender_handle"
        ),
        Index("ix_sieve_vacation_sent_at", "sent_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    sender: Mapped[str] = mapped_column(String(320))
    #: Which vacation action answered (RFC 5230 section 4.2 :handle, derived from its text).
    handle: Mapped[str] = mapped_column(String(64))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())
