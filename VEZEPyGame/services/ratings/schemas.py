"""Ratings over the API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class RatingRead(BaseModel):
    mode: str
    rating: int
    mu: float
    sigma: float
    games: int
    wins: int
    losses: int
    draws: int


class RatingChangeRead(BaseModel):
    match_id: str
    mode: str
    outcome: str
    rating_before: int
    rating_after: int
    delta: int
    opponent_handle: str | None
    created_at: datetime
