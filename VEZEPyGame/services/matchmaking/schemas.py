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
    bot_fill: bool | None = Field(
        None,
        description=(
            "If nobody fits before the bot wait, play an unrated game against the bot instead"
            " of waiting on. Defaults to yes for casual and no for ranked: a ranked ticket is"
            " never given to the bot unless its player asked for that."
        ),
    )

    @property
    def accepts_bot(self) -> bool:
        return self.bot_fill if self.bot_fill is not None else self.mode == "casual"


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
    #: The player agreed to an unrated bot game if nobody fits in time.
    bot_fill: bool


class QueueStatusRead(BaseModel):
    ticket: TicketRead | None
