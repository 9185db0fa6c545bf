"""Ratings: the caller's ratings and history, and the profile page with its rating chart."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyCore.web.sso import PageUser
from VEZEPyCore.web.templates import render
from VEZEPyGame.app.deps import RegistryDep, SessionDep, SettingsDep
from VEZEPyGame.app.routers.queue import page_context
from VEZEPyGame.app.security import PlayPrincipal
from VEZEPyGame.db.competition import RatingChange
from VEZEPyGame.services.ratings import service
from VEZEPyGame.services.ratings.chart import rating_chart
from VEZEPyGame.services.ratings.model import Skill
from VEZEPyGame.services.ratings.players import find_caller, handles, require_caller
from VEZEPyGame.services.ratings.schemas import RatingChangeRead, RatingRead

router = APIRouter(tags=["ratings"])

ModeQuery = Annotated[str, Query(pattern="^(ranked|casual)$")]


async def _changes(session: AsyncSession, rows: list[RatingChange]) -> list[RatingChangeRead]:
    names = await handles(session, [row.opponent_id for row in rows])
    return [
        RatingChangeRead(
            match_id=row.match_id,
            mode=row.mode,
            outcome=row.outcome,
            rating_before=round(row.mu_before),
            rating_after=round(row.mu_after),
            delta=round(row.mu_after) - round(row.mu_before),
            opponent_handle=names.get(row.opponent_id) if row.opponent_id else None,
            created_at=row.created_at,
        )
        for row in rows
    ]


@router.get(
    "/api/ratings/me",
    response_model=list[RatingRead],
    summary="The caller's rating in each mode",
    responses={404: {"description": "No player profile for this account"}},
)
async def list_my_ratings(
    principal: PlayPrincipal, session: SessionDep, settings: SettingsDep
) -> list[RatingRead]:
    """Ranked and casual ratings (the starting rating for a mode not played yet)."""
    player = await require_caller(session, principal, mail_domain=settings.mail_domain)
    stored = {
        rating.mode: rating for rating in await service.list_ratings(session, player_id=player.id)
    }
    reads = []
    for mode in sorted(service.RATED_MODES):
        rating = stored.get(mode)
        skill = Skill(rating.mu, rating.sigma) if rating else Skill()
        reads.append(
            RatingRead(
                mode=mode,
                rating=skill.display,
                mu=round(skill.mu, 2),
                sigma=round(skill.sigma, 2),
                games=rating.games if rating else 0,
                wins=rating.wins if rating else 0,
                losses=rating.losses if rating else 0,
                draws=rating.draws if rating else 0,
            )
        )
    return reads


@router.get(
    "/api/ratings/me/history",
    response_model=list[RatingChangeRead],
    summary="The caller's rating history in a mode",
    responses={404: {"description": "No player profile for this account"}},
)
async def list_my_rating_history(
    principal: PlayPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    mode: ModeQuery = "ranked",
    limit: Annotated[int, Query(ge=1, le=service.HISTORY_LIMIT)] = 100,
) -> list[RatingChangeRead]:
    """Each counted match's rating change, oldest first."""
    player = await require_caller(session, principal, mail_domain=settings.mail_domain)
    rows = await service.list_history(session, player_id=player.id, mode=mode, limit=limit)
    return await _changes(session, rows)


@router.get("/ui/profile", response_class=HTMLResponse, include_in_schema=False)
async def profile_page(
    request: Request,
    principal: PageUser,
    session: SessionDep,
    settings: SettingsDep,
    registry: RegistryDep,
    mode: ModeQuery = "ranked",
) -> HTMLResponse:
    """The player's ratings, a chart of the rating over their matches, and recent results."""
    player = await find_caller(session, principal, mail_domain=settings.mail_domain)
    ratings = await list_my_ratings(principal, session, settings) if player else []
    history = (
        await _changes(session, await service.list_history(session, player_id=player.id, mode=mode))
        if player
        else []
    )
    return render(
        request,
        "profile.html",
        {
            **page_context(request, registry, principal, player),
            "ratings": ratings,
            "mode": mode,
            "chart": rating_chart([(c.rating_before, c.rating_after) for c in history]),
            "recent": history[::-1][:20],
            "nav_current": "profile",
        },
    )
