"""Queue tickets over the API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

QueueMode = Literal["ranked", "casual"]


class QueueJoin(BaseModel):
    mode: QueueMode = "ranked"
    region: str | None = Field(
        None,
        min_length=2,
        max_length=16,
        pattern=r"^[a-z]+$",
        description="Defaults to the player's profile region",
    )


class TicketRead(BaseModel):
    id: str
    mode: str
    region: str
    rating: int
    status: Literal["waiting", "matched", "cancelled"]
    created_at: datetime
    waited_seconds: float
    #: The rating gap this ticket accepts now (it widens while waiting).
    window: float
    waiting_in_pool: int
    match_id: str | None
    bot_level: int | None
    opponent_handle: str | None


class QueueStatusRead(BaseModel):
    ticket: TicketRead | None
