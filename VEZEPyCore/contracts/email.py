"""The Email message list of the brief's contract (`GET /api/messages`).

Email serves it and Game proxies it; both validate against these models, so a change here is
a contract change seen by both sides at once. `from_` stands for the `From` header.
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
