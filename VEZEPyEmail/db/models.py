"""Email tables (SQLAlchemy 2.0). The schema itself comes only from the Alembic migrations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from VEZEPyCore.db.types import UTCDateTime


class Base(DeclarativeBase):
    pass


class Mailbox(Base):
    __tablename__ = "mailboxes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Folder(Base):
    """A mailbox's folder; the six special ones carry their RFC 6154 special-use name."""

    __tablename__ = "folders"
    __table_args__ = (UniqueConstraint("mailbox_id", "name", name="uq_folders_mailbox_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    special_use: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_mailbox_folder_received", "mailbox_id", "folder", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    folder: Mapped[str] = mapped_column(String(128), default="INBOX")
    message_id_header: Mapped[str | None] = mapped_column(String(998), nullable=True)
    subject: Mapped[str] = mapped_column(String(998), default="")
    from_addr: Mapped[str] = mapped_column(String(998), default="")
    to_addrs: Mapped[str] = mapped_column(Text, default="")
    date: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    snippet: Mapped[str] = mapped_column(String(300), default="")
    body_text: Mapped[str] = mapped_column(Text, default="")
    size: Mapped[int] = mapped_column(Integer, default=0)
    spam_score: Mapped[float] = mapped_column(Float, default=0.0)
    seen: Mapped[bool] = mapped_column(Boolean, default=False)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    answered: Mapped[bool] = mapped_column(Boolean, default=False)
    draft: Mapped[bool] = mapped_column(Boolean, default=False)
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Content address (SHA-256 hex) of the raw message under the mail blob directory; None for
    #: messages created before blobs existed (the welcome mail renders from `body_text`).
    blob_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cc_addrs: Mapped[str] = mapped_column(Text, default="")
    in_reply_to: Mapped[str | None] = mapped_column(String(998), nullable=True)
    references_header: Mapped[str] = mapped_column(Text, default="")
    #: The Message-ID that starts the conversation (from References/In-Reply-To).
    thread_id: Mapped[str | None] = mapped_column(String(998), nullable=True)
    has_attachments: Mapped[bool] = mapped_column(Boolean, default=False)
    envelope_from: Mapped[str] = mapped_column(String(320), default="")
    auth_results: Mapped[str] = mapped_column(Text, default="")


class OutboundMessage(Base):
    """The raw bytes of a message queued for remote delivery (shared by its queue rows)."""

    __tablename__ = "outbound_messages"
    __table_args__ = (Index("uq_outbound_messages_origin", "origin", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Set when the raw message lives in the blob store; otherwise `raw` holds it.
    blob_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    envelope_from: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: What queued it when that may happen again (a retried delivery, a DSN after a crash):
    #: unique, so the same cause queues the message once. None for ordinary sends.
    origin: Mapped[str | None] = mapped_column(String(80), nullable=True)


class OutboundTask(Base):
    """One remote recipient of an outbound message: queued -> sending -> sent | failed.

    `failed` rows are the dead letters: `last_error` says why, a DSN went to the sender.
    """

    __tablename__ = "outbound_queue"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'sending', 'sent', 'failed')", name="ck_outbound_queue_status"
        ),
        Index("ix_outbound_queue_due", "status", "next_attempt_at"),
        Index("ix_outbound_queue_message", "message_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("outbound_messages.id", ondelete="CASCADE"))
    envelope_from: Mapped[str] = mapped_column(String(320))
    recipients: Mapped[list[str]] = mapped_column(JSON)
    domain: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SendIdempotency(Base):
    """The first result of a send made with an `Idempotency-Key`, so a retry gets it back.

    Written in the send's own transaction: the key is claimed exactly when the send commits.
    Rows live for a bounded time (`expires_at`); expired ones are ignored and swept.
    """

    __tablename__ = "send_idempotency"
    __table_args__ = (
        UniqueConstraint("mailbox_id", "key", name="uq_send_idempotency_mailbox_key"),
        Index("ix_send_idempotency_expires", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    #: SHA-256 of what the request asked for, so the same key with another body is refused.
    request_hash: Mapped[str] = mapped_column(String(64))
    #: The SendRead the first request answered, as JSON.
    response: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IntakeMessage(Base):
    """A message the MX listener accepted and has not delivered yet (services/intake).

    The row is written, and committed, before the 250: it is the durable record of the
    accepted message, raw bytes and envelope, until delivery files it into the mailboxes and
    deletes it in the same transaction. `leased_until` keeps two deliverers off one row.
    """

    __tablename__ = "smtp_intake"
    __table_args__ = (
        Index("ix_smtp_intake_leased", "leased_until"),
        # Ids are never reused (SQLite would reuse them once the table is empty): a deliverer
        # whose lease ran out must not end a newer row that got its old row's id.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    envelope_from: Mapped[str] = mapped_column(String(320))
    recipients: Mapped[list[str]] = mapped_column(JSON)
    peer_ip: Mapped[str] = mapped_column(String(64))
    helo: Mapped[str] = mapped_column(String(255))
    #: The Received field, as rendered when the message was accepted (RFC 5321 section 4.4).
    received: Mapped[str] = mapped_column(Text)
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
