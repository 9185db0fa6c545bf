"""Webmail's own table (whose remote images a person has chosen to load) and its index."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from VEZEPyCore.db.types import UTCDateTime
from VEZEPyEmail.db.models import Base, Message


class ImageAllowance(Base):
    """Remote images may load for one message (`kind="message"`, value = the message id) or
    for every message from one sender (`kind="sender"`, value = the lower-case address)."""

    __tablename__ = "webmail_image_allowances"
    __table_args__ = (
        UniqueConstraint("mailbox_id", "kind", "value", name="uq_webmail_image_allowances"),
        CheckConstraint("kind IN ('message', 'sender')", name="ck_webmail_image_allowances_kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    value: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


#: The sidebar counts unread messages per folder on every live event. With (mailbox, seen)
#: as equalities and the folder in the index, that count reads only the unread entries of one
#: mailbox, never the table (migration 0006).
UNREAD_INDEX = Index(
    "ix_messages_mailbox_seen_folder", Message.mailbox_id, Message.seen, Message.folder
)
