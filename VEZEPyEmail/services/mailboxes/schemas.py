from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class MailboxCreate(BaseModel):
    address: str = Field(min_length=3, max_length=320)
    display_name: str = Field("", max_length=200)


class MailboxRead(BaseModel):
    address: str
    display_name: str
    created_at: datetime
    created: bool = Field(description="True when this call created the mailbox")
