"""Seasons and leaderboards: top N, the caller's rank and neighbours, the season reset."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyCore.errors import NotFound
from VEZEPyCore.web.sso import PageUser
from VEZEPyCore.web.templates import render
from VEZEPyGame.app.deps import RegistryDep, SessionDep, SettingsDep
from VEZEPyGame.app.routers.queue import CompetitionDep, page_context
from VEZEPyGame.app.security import AdminPrincipal, PlayPrincipal
from VEZEPyGame.db.competition import Season
from VEZEPyGame.services.leaderboards import seasons
from VEZEPyGame.services.leaderboards.schemas import (
    LeaderboardRead,
    MyStandingRead,
    SeasonCreate,
    SeasonRead,
    StandingRead,
)
from VEZEPyGame.services.leaderboards.service import MAX_LIMIT, MAX_SPAN, Leaderboards
from VEZEPyGame.services.leaderboards.standings import Board, Standing
from VEZEPyGame.services.matchmaking.config import CompetitionSettings
from VEZEPyGame.services.ratings.players import find_caller, require_caller

router = APIRouter(tags=["leaderboards"])

ModePath = Annotated[str, Path(pattern="^(ranked|casual)$")]
SeasonQuery = Annotated[
    int | None, Query(ge=1, le=1_000_000, description="Season number; the current by default")
]


def _leaderboards(request: Request) -> Leaderboards:
    boards: Leaderboards = request.app.state.leaderboards
    return boards


async def resolve_season(
    session: AsyncSession, config: CompetitionSettings, number: int | None
) -> Season:
    if number is None:
        season = await seasons.current_season(
            session, now=datetime.now(UTC), length_days=config.season_days
        )
        await session.commit()  # the first read of a new period starts its season
        return season
    found = await seasons.get_season(session, number=number)
    if found is None:
        raise NotFound("no such season")
    return found


def _read(standing: Standing) -> StandingRead:
    return StandingRead(
        rank=standing.rank,
        handle=standing.handle,
        score=standing.score,
        games=standing.games,
        wins=standing.wins,
        losses=standing.losses,
        draws=standing.draws,
    )


@router.get("/api/seasons/current", response_model=SeasonRead, summary="The current season")
async def read_current_season(
    _principal: PlayPrincipal, session: SessionDep, config: CompetitionDep
) -> SeasonRead:
    """The running season with its start and planned end."""
    return SeasonRead.model_validate(await resolve_season(session, config, None))


@router.post(
    "/api/seasons",
    response_model=SeasonRead,
    status_code=status.HTTP_201_CREATED,
    summary="End the current season and start a new one (admin)",
    responses={
        403: {"description": "The token lacks `game.admin`"},
        409: {"description": "Another new season was started at the same moment"},
    },
)
async def create_season(
    body: SeasonCreate, _principal: AdminPrincipal, session: SessionDep, config: CompetitionDep
) -> SeasonRead:
    """The season reset: the current season ends now, the next starts with empty boards."""
    season = await seasons.start_new_season(
        session,
        now=datetime.now(UTC),
        length_days=body.days or config.season_days,
        name=body.name.strip() if body.name else None,
    )
    await session.commit()
    return SeasonRead.model_validate(season)


@router.get(
    "/api/leaderboards/{mode}",
    response_model=LeaderboardRead,
    summary="The top of a leaderboard",
    responses={404: {"description": "No such season"}},
)
async def read_leaderboard(
    request: Request,
    mode: ModePath,
    _principal: PlayPrincipal,
    session: SessionDep,
    config: CompetitionDep,
    season: SeasonQuery = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = MAX_LIMIT,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> LeaderboardRead:
    """Players by rating in a season and mode, best first (equal ratings: higher id first)."""
    found = await resolve_season(session, config, season)
    await session.close()
    entries = await _leaderboards(request).top(Board.of(found, mode), limit=limit, offset=offset)
    return LeaderboardRead(
        season=SeasonRead.model_validate(found), mode=mode, entries=[_read(e) for e in entries]
    )


@router.get(
    "/api/leaderboards/{mode}/me",
    response_model=MyStandingRead,
    summary="The caller's rank and the players around it",
    responses={404: {"description": "No player profile, no such season, or not on the board"}},
)
async def read_my_standing(
    request: Request,
    mode: ModePath,
    principal: PlayPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    config: CompetitionDep,
    season: SeasonQuery = None,
    span: Annotated[int, Query(ge=0, le=MAX_SPAN)] = 5,
) -> MyStandingRead:
    """The caller's rank with `span` players above and below."""
    player = await require_caller(session, principal, mail_domain=settings.mail_domain)
    found = await resolve_season(session, config, season)
    await session.close()
    place = await _leaderboards(request).neighbourhood(Board.of(found, mode), player.id, span=span)
    if place is None:
        raise NotFound("no counted games on this leaderboard yet")
    return MyStandingRead(
        season=SeasonRead.model_validate(found),
        mode=mode,
        me=_read(place.me),
        around=[_read(e) for e in place.around],
    )


@router.get("/ui/leaderboard", response_class=HTMLResponse, include_in_schema=False)
async def leaderboard_page(
    request: Request,
    principal: PageUser,
    session: SessionDep,
    settings: SettingsDep,
    registry: RegistryDep,
    config: CompetitionDep,
    mode: Annotated[str, Query(pattern="^(ranked|casual)$")] = "ranked",
    season: SeasonQuery = None,
) -> HTMLResponse:
    """The top 100, and where the player stands with the players around them."""
    player = await find_caller(session, principal, mail_domain=settings.mail_domain)
    found = await resolve_season(session, config, season)
    latest = await seasons.latest_season(session)
    context = page_context(request, registry, principal, player)
    await session.close()
    boards = _leaderboards(request)
    board = Board.of(found, mode)
    top = await boards.top(board, limit=MAX_LIMIT)
    place = await boards.neighbourhood(board, player.id, span=3) if player else None
    return render(
        request,
        "leaderboard.html",
        {
            **context,
            "season": found,
            "seasons": range(latest.number if latest else 1, 0, -1),
            "mode": mode,
            "top": top,
            "place": place,
            "me_id": player.id if player else None,
            "nav_current": "leaderboard",
        },
    )
