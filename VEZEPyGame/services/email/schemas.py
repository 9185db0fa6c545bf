"""Email's message list as Game receives it: the brief's contract, mirrored field for field.

Kept as Game's own copy (not imported from VEZEPyEmail) because the services only share the
wire format; a change to it is a contract change both sides must make.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class MessageRead(BaseModel):
    id: int
    subject: str
    from_: str
    date: datetime
    snippet: str
    labels: list[str]
    flags: list[str]
    size: int
    spam_score: float
    unread: bool


class MessageList(BaseModel):
    user: str
    messages: list[MessageRead]
