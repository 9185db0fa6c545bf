"""Request and response shapes of drafts, sending and reply/forward prefills."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from VEZEPyEmail.services.uploads.schemas import UploadRead

MAX_LIST = 1000
MAX_TEXT = 10_000_000


class MessageCompose(BaseModel):
    """A message being written; the body of `POST /api/drafts`, `PUT /api/drafts/{id}` and
    `POST /api/send`. Addresses are "bob@example.com" or "Bob <bob@example.com>"."""

    to: list[str] = Field(default_factory=list, max_length=MAX_LIST)
    cc: list[str] = Field(default_factory=list, max_length=MAX_LIST)
    bcc: list[str] = Field(
        default_factory=list,
        max_length=MAX_LIST,
        description="Receive the message but appear in no header of any copy",
    )
    subject: str = Field("", max_length=998)
    text: str = Field("", max_length=MAX_TEXT, description="The plain-text body")
    html: str | None = Field(
        None, max_length=MAX_TEXT, description="Optional HTML body; sanitised with nh3"
    )
    attachments: list[str] = Field(
        default_factory=list, max_length=100, description="Upload ids (`POST /api/uploads`)"
    )
    in_reply_to: int | None = Field(
        None, ge=1, le=2**62, description="Id of the caller's message this replies to"
    )
    forward_of: int | None = Field(
        None, ge=1, le=2**62, description="Id of the caller's message this forwards"
    )


class ComposeRead(BaseModel):
    """Editable fields of a message: a reply/forward prefill, or a stored draft."""

    to: list[str]
    cc: list[str]
    bcc: list[str]
    subject: str
    text: str
    html: str | None
    attachments: list[UploadRead] = Field(
        description="Uploads holding the attachments (fresh ids, valid for the upload TTL)"
    )
    in_reply_to: int | None
    forward_of: int | None


class DraftRead(ComposeRead):
    id: int = Field(description="The draft's message id; it stays the same across PUTs")
    folder: str = "Drafts"


class RecipientStatus(BaseModel):
    address: str
    status: Literal["delivered", "queued"] = Field(
        description="delivered: in a local mailbox now; queued: in the outbound queue"
    )


class SendRead(BaseModel):
    message_id: str = Field(description="The Message-ID header of the sent message")
    id: int = Field(description="Id of the copy in the sender's Sent folder")
    recipients: list[RecipientStatus]


class ComposeLimitsRead(BaseModel):
    """What a composer should check before the server refuses (sizes in bytes)."""

    max_message_bytes: int = Field(description="Whole message, attachments included (base64)")
    upload_max_bytes: int = Field(description="One attachment upload")
    max_recipients: int = Field(description="To, Cc and Bcc together")
    upload_ttl_seconds: float = Field(description="How long an unused upload is kept")
    send_rate_limit: int = Field(description="Messages per window and user")
    send_rate_window_seconds: int
