"""What a leaderboard read returns, whichever store answered it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Outcome = Literal["win", "loss", "draw"]


@dataclass(frozen=True, slots=True)
class Board:
    """One leaderboard: a season and a mode."""

    season_id: int
    mode: str


@dataclass(frozen=True, slots=True)
class Standing:
    """A player's place. Ranks are positions (1, 2, 3, ...): equal scores are ordered by the
    higher player id first, the same way in SQL and in Redis, so both stores agree exactly."""

    rank: int
    player_id: int
    handle: str
    score: int
    games: int
    wins: int
    losses: int
    draws: int


@dataclass(frozen=True, slots=True)
class Neighbourhood:
    """A player's own standing with the players just above and below."""

    me: Standing
    around: list[Standing]
