"""What a leaderboard read returns, whichever store answered it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

Outcome = Literal["win", "loss", "draw"]


@dataclass(frozen=True, slots=True)
class Board:
    """One leaderboard: a season and a mode."""

    season_id: int
    mode: str
    #: The season's start in microseconds: part of the Redis key, so a database that was reset
    #: or restored (season ids starting over) never reads an old installation's boards.
    started_us: int = 0

    @classmethod
    def of(cls, season: SeasonLike, mode: str) -> Board:
        return cls(season.id, mode, round(season.starts_at.timestamp() * 1_000_000))


class SeasonLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def starts_at(self) -> datetime: ...


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
