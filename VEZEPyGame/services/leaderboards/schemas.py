"""Seasons and leaderboards over the API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class SeasonRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int
    name: str
    starts_at: datetime
    ends_at: datetime


class SeasonCreate(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=64)
    days: int | None = Field(None, ge=1, le=3650, description="Defaults to GAME_SEASON_DAYS")


class StandingRead(BaseModel):
    rank: int
    handle: str
    score: int
    games: int
    wins: int
    losses: int
    draws: int


class LeaderboardRead(BaseModel):
    season: SeasonRead
    mode: str
    entries: list[StandingRead]


class MyStandingRead(BaseModel):
    season: SeasonRead
    mode: str
    me: StandingRead
    around: list[StandingRead]
