"""The telemetry batch a game client sends, one model per event type.

Every event has a `type` (the discriminator) and `ts`, the client's clock when it happened
(an aware timestamp). Unknown types and unknown fields are refused: a client that sends what
we do not understand gets a 422 it can fix, instead of data nobody reads.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

MATCH_ID = r"^[0-9a-f]{32}$"


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ts: AwareDatetime


class MoveEvent(_Event):
    """A disc dropped. `think_ms`: from the turn starting on the client to the drop."""

    type: Literal["move"]
    match_id: str = Field(pattern=MATCH_ID)
    column: int = Field(ge=0, le=6)
    think_ms: int = Field(ge=0, le=3_600_000)


class QueueJoinEvent(_Event):
    type: Literal["queue_join"]
    mode: str = Field(min_length=1, max_length=16, pattern=r"^[a-z0-9_-]+$")


class QueueLeaveEvent(_Event):
    """Left the queue before a match was found (a re-queue usually follows)."""

    type: Literal["queue_leave"]
    mode: str = Field(min_length=1, max_length=16, pattern=r"^[a-z0-9_-]+$")


class MatchAbandonEvent(_Event):
    type: Literal["match_abandon"]
    match_id: str = Field(pattern=MATCH_ID)


class PageViewEvent(_Event):
    type: Literal["page_view"]
    path: str = Field(min_length=1, max_length=200, pattern=r"^/[\x21-\x7e]*$")


class ClientErrorEvent(_Event):
    type: Literal["client_error"]
    message: str = Field(min_length=1, max_length=500)


TelemetryEventIn = Annotated[
    MoveEvent
    | QueueJoinEvent
    | QueueLeaveEvent
    | MatchAbandonEvent
    | PageViewEvent
    | ClientErrorEvent,
    Field(discriminator="type"),
]


class TelemetryBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: The upper bound here is a backstop; the configured maximum is checked by the service.
    events: list[TelemetryEventIn] = Field(min_length=1, max_length=5000)


class TelemetryAccepted(BaseModel):
    batch_id: str
    accepted: int


FlagStatus = Literal["open", "resolved", "dismissed"]


class FlagRead(BaseModel):
    id: int
    player_id: int
    handle: str
    rule: str
    detail: str
    match_id: str | None
    created_at: datetime
    #: "open", or how an admin closed it: "resolved" (acted on) or "dismissed" (false alarm).
    status: FlagStatus = "open"
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    review_note: str | None = None


class FlagReview(BaseModel):
    """An admin's decision on an open flag; kept with who and when, never overwritten."""

    decision: Literal["resolved", "dismissed"]
    note: str = Field("", max_length=500)


class FlagList(BaseModel):
    flags: list[FlagRead]
