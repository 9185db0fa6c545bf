"""Matches over the API and in events: one state shape for the page, the stream and REST."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from VEZEPyGame.services.bot import BOT_LEVELS

Side = Literal["first", "second"]
Mode = Literal["ranked", "casual", "bot"]
Result = Literal["first", "second", "draw"]
#: What the caller made of a finished match.
Outcome = Literal["win", "loss", "draw"]


class MatchCreate(BaseModel):
    """A match against the bot. Ranked and casual matches come from the matchmaking queue."""

    mode: Literal["bot"] = "bot"
    bot_level: int = Field(2, ge=min(BOT_LEVELS), le=max(BOT_LEVELS))
    side: Literal["first", "second"] = Field(
        "first", description="Your seat: `first` moves first; with `second` the bot opens"
    )


class MoveCreate(BaseModel):
    #: Bounded, not range-checked: the rules refuse an out-of-range column with a reason.
    column: int = Field(ge=-100, le=100, description="0 (left) to 6 (right)")


class SeatRead(BaseModel):
    side: Side
    player_id: int | None
    handle: str | None
    display_name: str
    avatar_colour: str
    bot_level: int | None = None


class ClockRead(BaseModel):
    first_ms: int
    second_ms: int
    #: The side whose clock runs now (None once finished).
    running: Side | None
    initial_ms: int
    increment_ms: int


class DrawCooldownRead(BaseModel):
    """Moves of its own each side must still make before it may offer a draw again (0: now).
    A draw offer that does not end the match starts that side's cooldown."""

    first: int = 0
    second: int = 0


class MatchRead(BaseModel):
    """A match as both players (and, once finished, anyone signed in) see it."""

    id: str
    mode: Mode
    status: Literal["active", "finished"]
    result: Result | None
    end_reason: str | None
    winner_player_id: int | None
    first: SeatRead
    second: SeatRead
    moves: list[int]
    #: Rows from the top down; 0 empty, 1 first player's stone, 2 second's.
    board: list[list[int]]
    to_move: Side | None
    clock: ClockRead
    #: [column, row] cells of the winning line(s), row 0 at the bottom.
    winning_cells: list[tuple[int, int]]
    #: The side whose draw offer stands (the other side may accept or decline), if any.
    draw_offer: Side | None = None
    draw_cooldown: DrawCooldownRead = Field(default_factory=DrawCooldownRead)
    #: Grows with every change of the match: a page keeps the highest it has seen.
    version: int = 0
    created_at: datetime
    finished_at: datetime | None


class MoveRead(BaseModel):
    ply: int
    column: int
    side: Side
    player_id: int | None
    clock_ms: int
    played_at: datetime


class ReplayRead(BaseModel):
    match: MatchRead
    moves: list[MoveRead]


class MatchSummaryRead(BaseModel):
    id: str
    mode: Mode
    status: Literal["active", "finished"]
    result: Result | None
    end_reason: str | None
    your_side: Side
    #: win / loss / draw for the caller; None while active.
    outcome: Outcome | None
    opponent: str
    move_count: int
    created_at: datetime
    finished_at: datetime | None


class MatchListRead(BaseModel):
    matches: list[MatchSummaryRead]
