"""The default `StartMatches`: create the matches through the match service, in the claim's
transaction (so the tickets are matched exactly when the match exists).

The match service keeps bot games in their own mode ("bot", one player and a level), so a
queue ticket filled by a bot starts a "bot" match; the ticket keeps its queue's mode. Bot games
move no rating either way.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyCore.events.bus import EventBus
from VEZEPyGame.services.matches.events import publish_match_started
from VEZEPyGame.services.matches.hooks import MatchHooks
from VEZEPyGame.services.matches.service import NewMatch, create_matches, get_matches
from VEZEPyGame.services.matchmaking.start import MatchRequest

BOT_MODE = "bot"
#: Matches read back per query when announcing a pass's matches.
ANNOUNCE_PAGE = 500


async def start_with_match_service(session: AsyncSession, requests: Sequence[MatchRequest]) -> None:
    await create_matches(
        session,
        [
            NewMatch(
                id=request.match_id,
                mode=BOT_MODE if request.bot_level is not None else request.mode,
                first_player_id=request.first_player_id,
                second_player_id=request.second_player_id,
                bot_level=request.bot_level,
            )
            for request in requests
        ],
    )


async def announce_with_match_service(
    sessionmaker: async_sessionmaker[AsyncSession],
    bus: EventBus,
    match_ids: Sequence[str],
    hooks: MatchHooks | None = None,
) -> None:
    """After the commit: the match service's own `match.started` to both players (its lobby and
    match pages listen for it), beside the matchmaker's `match.found`. One read per page of
    matches, not one per match."""
    for offset in range(0, len(match_ids), ANNOUNCE_PAGE):
        async with sessionmaker() as session:
            matches = await get_matches(session, match_ids[offset : offset + ANNOUNCE_PAGE])
        for match in matches:
            await publish_match_started(bus, match)
            if hooks is not None:
                await hooks.run_after_started(match)
