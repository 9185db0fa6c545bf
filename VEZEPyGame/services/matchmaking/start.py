"""How the matchmaker starts matches: a callable, so the pairing can be tested on its own.

The default starts real matches through the match service; tests and other deployments may
pass any `StartMatches`. It is handed a whole pass's matches at once (a set-based insert, not
one flush per match) and runs inside the transaction that claimed their tickets, so a match is
created exactly when its tickets are claimed. Match ids are chosen by the matchmaker: the
claim records them on the tickets in the same statement that claims them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

#: Bot levels of the bot service (1 easy, 2 medium, 3 hard), by the rating they suit.
BOT_LEVEL_CEILINGS = ((1350.0, 1), (1650.0, 2))
HARDEST_BOT = 3


@dataclass(frozen=True, slots=True)
class MatchRequest:
    match_id: str
    mode: str
    first_player_id: int
    #: None when a bot takes the second seat.
    second_player_id: int | None
    bot_level: int | None = None


StartMatches = Callable[[AsyncSession, Sequence[MatchRequest]], Awaitable[None]]


def bot_level_for(rating: float) -> int:
    """A bot that suits the player: easy below 1350, medium to 1650, hard above."""
    for ceiling, level in BOT_LEVEL_CEILINGS:
        if rating < ceiling:
            return level
    return HARDEST_BOT
