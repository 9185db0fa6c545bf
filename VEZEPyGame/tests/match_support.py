"""Helpers shared by the match tests: players, tokens, direct match creation, SSE parsing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import FastAPI

from VEZEPyGame.db.matches import Match
from VEZEPyGame.services.matches import service
from VEZEPyGame.services.matches.clock import TimeControl
from VEZEPyGame.services.players.service import ensure_player
from VEZEPyGame.tests.conftest import bearer

Minter = Callable[..., str]
#: Settings for match tests: the bot answers at once and quickly, the sweeper stays out of the
#: way unless a test wants it.
FAST_MATCHES: dict[str, Any] = {
    "bot_reply_delay_ms": 0,
    "bot_think_seconds": 0.05,
    "match_sweep_seconds": 300.0,
}


def player_headers(mint: Minter, handle: str) -> dict[str, str]:
    return bearer(
        mint(
            f"sub-{handle}",
            audience="veze-game",
            scopes=("game.play",),
            preferred_username=handle,
        )
    )


async def make_players(app: FastAPI, *handles: str) -> dict[str, int]:
    """Provision players as the portal would; their ids by handle."""
    ids = {}
    async with app.state.sessionmaker() as session:
        for handle in handles:
            result = await ensure_player(session, handle=handle, display_name=handle.title())
            ids[handle] = result.player.id
        await session.commit()
    return ids


async def start_match(
    app: FastAPI,
    *,
    first: int,
    second: int | None,
    mode: str = "casual",
    bot_level: int | None = None,
    time_control: TimeControl | None = None,
    now: datetime | None = None,
) -> str:
    """A match as the matchmaker starts one: `create_match`, then commit."""
    async with app.state.sessionmaker() as session:
        match = await service.create_match(
            session,
            mode=mode,
            first_player_id=first,
            second_player_id=second,
            bot_level=bot_level,
            time_control=time_control,
            now=now,
        )
        await session.commit()
    return match.id


async def load_match(app: FastAPI, match_id: str) -> Match:
    async with app.state.sessionmaker() as session:
        match: Match | None = await session.get(Match, match_id)
    assert match is not None
    return match
