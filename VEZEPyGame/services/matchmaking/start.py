"""How the matchmaker starts a match: a callable, so the pairing can be tested on its own.

The default starts a real match through the match service; tests and other deployments may
pass any `StartMatch`. It runs inside the transaction that claims the tickets, so a match is
created exactly when its tickets are claimed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

#: Bot levels of the bot service (1 easy, 2 medium, 3 hard), by the rating they suit.
BOT_LEVEL_CEILINGS = ((1350.0, 1), (1650.0, 2))
HARDEST_BOT = 3


@dataclass(frozen=True, slots=True)
class MatchRequest:
    mode: str
    first_player_id: int
    #: None when a bot takes the second seat.
    second_player_id: int | None
    bot_level: int | None = None


StartMatch = Callable[[AsyncSession, MatchRequest], Awaitable[str]]


def bot_level_for(rating: float) -> int:
    """A bot that suits the player: easy below 1350, medium to 1650, hard above."""
    for ceiling, level in BOT_LEVEL_CEILINGS:
        if rating < ceiling:
            return level
    return HARDEST_BOT
