"""The game's home page: the way in for players (play, rating, recent matches) and visitors.

People sign in through the portal (single sign-on, VEZEPyCore.web.sso); the home page also
serves visitors, with a sign-in button and what the game is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyCore.web.sso import OptionalPageUser
from VEZEPyCore.web.templates import render
from VEZEPyGame.app.deps import RegistryDep, SessionDep, SettingsDep
from VEZEPyGame.db.models import Player
from VEZEPyGame.services.matches import service as matches
from VEZEPyGame.services.matches.views import summary_read
from VEZEPyGame.services.ratings import service as ratings
from VEZEPyGame.services.ratings.model import Skill
from VEZEPyGame.services.ratings.players import find_caller
from VEZEPyGame.services.registry import portal_url, webmail_url

router = APIRouter(tags=["pages"], include_in_schema=False)

#: Finished matches the home page lists (the history page has them all).
HOME_RECENT = 5


@dataclass(frozen=True)
class ModeRating:
    mode: str
    rating: int
    games: int
    wins: int
    losses: int
    draws: int


@router.get("/")
async def root(request: Request) -> RedirectResponse:
    """Send a browser at the bare host to the game's home page."""
    return RedirectResponse(request.url_for("home_page"), status_code=303)


@router.get("/ui", response_class=HTMLResponse)
async def home_page(
    request: Request,
    registry: RegistryDep,
    principal: OptionalPageUser,
    session: SessionDep,
    settings: SettingsDep,
) -> HTMLResponse:
    """Where the player stands: ratings, running and recent matches (the lobby starts games)."""
    context: dict[str, Any] = {
        "portal_url": portal_url(registry),
        "webmail_url": webmail_url(registry),
        "handle": None,
        "player": None,
        "nav_current": "home",
    }
    if principal is not None:
        player = await find_caller(session, principal, mail_domain=settings.mail_domain)
        context["handle"] = (
            player.handle
            if player
            else principal.claims.get("preferred_username") or principal.address
        )
        if player is not None:
            context.update(await _overview(session, player))
    return render(request, "home.html", context)


async def _overview(session: AsyncSession, player: Player) -> dict[str, Any]:
    """What a signed-in player sees on the home page."""
    stored = {r.mode: r for r in await ratings.list_ratings(session, player_id=player.id)}
    mode_ratings = []
    for mode in ("ranked", "casual"):
        row = stored.get(mode)
        skill = Skill(row.mu, row.sigma) if row else Skill()
        mode_ratings.append(
            ModeRating(
                mode=mode,
                rating=skill.display,
                games=row.games if row else 0,
                wins=row.wins if row else 0,
                losses=row.losses if row else 0,
                draws=row.draws if row else 0,
            )
        )
    active = await matches.list_player_matches(session, player_id=player.id, status="active")
    recent = await matches.list_player_matches(
        session, player_id=player.id, status="finished", limit=HOME_RECENT
    )
    seated = await matches.players_of(session, [*active, *recent])
    return {
        "player": player,
        "ratings": mode_ratings,
        "active": [summary_read(m, player.id, seated) for m in active],
        "recent": [summary_read(m, player.id, seated) for m in recent],
    }
