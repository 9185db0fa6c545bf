"""Shared helpers of the competition tests (ratings, matchmaking, leaderboards)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyCore.web.sso import SsoSession, session_cookie_name
from VEZEPyGame.db.models import Player
from VEZEPyGame.services.matchmaking.start import MatchRequest
from VEZEPyGame.tests.conftest import bearer

Minter = Callable[..., str]

#: Settings overrides: no background passes (a test runs them when it says), no bots.
QUIET: dict[str, Any] = {"matchmaker_enabled": False, "matchmaker_bot_after_seconds": 0}


@dataclass
class RecordingStart:
    """A `StartMatches` that records what it was asked (and creates no match rows)."""

    requests: list[MatchRequest] = field(default_factory=list)

    async def __call__(self, session: AsyncSession, requests: Sequence[MatchRequest]) -> None:
        self.requests.extend(requests)


@dataclass
class FakeMatch:
    """A finished match as the match service hands it to `on_finished`."""

    first_player_id: int
    second_player_id: int | None
    result: str
    mode: str = "ranked"
    bot_level: int | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


def competition_app(app: FastAPI, **state: Any) -> FastAPI:
    """The app with these `app.state` values (a `start_match` of the test's, say)."""
    for key, value in state.items():
        setattr(app.state, key, value)
    return app


async def add_players(app: FastAPI, *handles: str, region: str = "eu") -> list[int]:
    now = datetime.now(UTC)
    async with app.state.sessionmaker() as session:
        players = [Player(handle=h, region=region, created_at=now) for h in handles]
        session.add_all(players)
        await session.commit()
        return [player.id for player in players]


def player_headers(mint: Minter, handle: str, *scopes: str) -> dict[str, str]:
    return bearer(
        mint(
            f"{handle}@vezeuniqverse.com",
            audience="veze-game",
            scopes=scopes or ("game.play",),
            preferred_username=handle,
        )
    )


def session_cookie(app: FastAPI, handle: str, mint: Minter) -> tuple[str, str]:
    """(name, value) of a signed-in browser's game session cookie, as `/auth/callback` sets."""
    token = mint(
        f"sub-{handle}",
        audience="veze-game",
        scopes=("openid", "game.play"),
        ttl_seconds=900,
        preferred_username=handle,
    )
    session = SsoSession(
        access_token=token,
        refresh_token=None,
        expires_at=int(time.time()) + 900,
        sid=None,
        subject=f"sub-{handle}",
        handle=handle,
        email=f"{handle}@vezeuniqverse.com",
    )
    value = app.state.sso.codec(app.state.settings).dump_session(session)
    return session_cookie_name("game"), str(value)
