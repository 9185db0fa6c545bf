"""Response bodies of /api/threads."""

from __future__ import annotations

from pydantic import BaseModel, Field

from VEZEPyEmail.services.messages.schemas import MessageSummaryRead


class ThreadMessageRead(MessageSummaryRead):
    """The list's summary of one message, plus the folder it is in."""

    folder: str


class ThreadRead(BaseModel):
    user: str
    thread_id: str
    messages: list[ThreadMessageRead] = Field(description="Oldest first (by Date, then arrival)")
