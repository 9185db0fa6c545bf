"""Message request bodies; the response shapes are the shared contract in VEZEPyCore."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from VEZEPyCore.contracts.email import MessageList, MessageRead

__all__ = [
    "AttachmentRead",
    "FlagsUpdate",
    "FolderTarget",
    "HeaderRead",
    "LabelsUpdate",
    "MessageDeleteRead",
    "MessageDetailRead",
    "MessageList",
    "MessagePage",
    "MessageRead",
    "MessageSummaryRead",
    "ReadUpdate",
    "StarUpdate",
]

Flag = Literal["\\Seen", "\\Flagged", "\\Answered", "\\Draft"]

MAX_LABELS = 20
MAX_LABEL_LENGTH = 64


class MessageSummaryRead(MessageRead):
    """A list entry: the contract's fields plus the conversation the message belongs to."""

    thread_id: str | None = Field(
        None, description="The conversation's id; its messages: GET /api/threads/{thread_id}"
    )


class MessagePage(MessageList):
    """The contract's list plus an opaque keyset cursor for the next page (None at the end)."""

    # Narrowed to the subclass: still the contract's shape for anyone reading MessageList.
    messages: list[MessageSummaryRead]  # type: ignore[assignment]
    next_cursor: str | None = None


class ReadUpdate(BaseModel):
    read: bool = True


class StarUpdate(BaseModel):
    starred: bool = True


class LabelsUpdate(BaseModel):
    labels: list[str] = Field(max_length=MAX_LABELS)

    @field_validator("labels")
    @classmethod
    def _clean_labels(cls, labels: list[str]) -> list[str]:
        cleaned: list[str] = []
        for label in labels:
            label = label.strip()
            if not label or len(label) > MAX_LABEL_LENGTH or any(ord(ch) < 32 for ch in label):
                raise ValueError(f"each label must be 1-{MAX_LABEL_LENGTH} printable characters")
            if label not in cleaned:
                cleaned.append(label)
        return cleaned


class HeaderRead(BaseModel):
    name: str
    value: str


class AttachmentRead(BaseModel):
    index: int = Field(description="Position in the message; use it to download the part")
    filename: str
    content_type: str
    size: int = Field(description="Decoded size in bytes")


class MessageDetailRead(BaseModel):
    id: int
    folder: str
    subject: str
    from_: str
    to: list[str]
    cc: list[str]
    date: datetime
    received_at: datetime
    message_id: str | None
    in_reply_to: str | None
    references: list[str]
    thread_id: str | None
    flags: list[str]
    labels: list[str]
    unread: bool
    size: int
    spam_score: float
    headers: list[HeaderRead] = Field(description="Every header field in order, unfolded")
    text: str = Field(description="The plain-text body (or the HTML body as text)")
    html: str = Field(description="The HTML body sanitised with nh3; empty when there is none")
    has_remote_images: bool = Field(
        description='True when `html` has <img data-remote-image="true"> loading remote content'
    )
    attachments: list[AttachmentRead]


class FolderTarget(BaseModel):
    folder: str = Field(min_length=1, max_length=128)


class FlagsUpdate(BaseModel):
    add: list[Flag] = Field(default_factory=list, max_length=4)
    remove: list[Flag] = Field(default_factory=list, max_length=4)


class MessageDeleteRead(BaseModel):
    id: int
    purged: bool = Field(description="True when the message was removed for good")
    folder: str | None = Field(description="Where it is now (Trash), or null when purged")
