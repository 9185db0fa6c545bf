"""The competitive layer's place in the app: leaderboards, matchmaker and the rating hooks.

`competition_runtime` runs inside the app's lifespan (after the shared runtime, so the engine
and the bus exist) and puts `leaderboards` and `matchmaker` on `app.state`. Matches start through
`app.state.start_match` (a `StartMatches`) when set (tests set it), else through the match
service.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyCore.security.ratelimit import make_rate_limiter
from VEZEPyCore.settings import CoreSettings
from VEZEPyCore.tasks import cancel_and_wait
from VEZEPyGame.db.competition import RatingChange, Season
from VEZEPyGame.services.leaderboards.after_commit import stage
from VEZEPyGame.services.leaderboards.seasons import current_season
from VEZEPyGame.services.leaderboards.service import Leaderboards, reconcile_since
from VEZEPyGame.services.leaderboards.standings import Board
from VEZEPyGame.services.matchmaking.config import CompetitionSettings
from VEZEPyGame.services.matchmaking.matches_adapter import (
    announce_with_match_service,
    start_with_match_service,
)
from VEZEPyGame.services.matchmaking.start import StartMatches
from VEZEPyGame.services.matchmaking.worker import Matchmaker
from VEZEPyGame.services.metrics import GameMetrics
from VEZEPyGame.services.ratings.service import (
    RATED_MODES,
    FinishedMatch,
    apply_match_result,
    rated_players,
)

log = logging.getLogger(__name__)


def competition_settings(app: FastAPI) -> CompetitionSettings:
    """The competitive layer's settings: part of the service's settings (`GameSettings`)."""
    settings = app.state.settings
    assert isinstance(settings, CompetitionSettings)
    return settings


def default_start_match() -> StartMatches:
    """Matches start through the match service."""
    return start_with_match_service


@asynccontextmanager
async def competition_runtime(app: FastAPI, settings: CoreSettings) -> AsyncIterator[None]:
    config = competition_settings(app)
    leaderboards = Leaderboards.from_url(
        app.state.engine, settings.redis_url, prefix=config.leaderboard_redis_prefix
    )
    app.state.leaderboards = leaderboards
    start_match: StartMatches | None = getattr(app.state, "start_match", None)

    async def announce(match_ids: Sequence[str]) -> None:
        await announce_with_match_service(
            app.state.sessionmaker, app.state.bus, match_ids, app.state.match_hooks
        )

    metrics: GameMetrics | None = getattr(app.state, "game_metrics", None)
    matchmaker = Matchmaker(
        sessionmaker=app.state.sessionmaker,
        bus=app.state.bus,
        start_matches=start_match or default_start_match(),
        settings=config,
        after_start=None if start_match else announce,
        observe_wait=metrics.observe_wait if metrics is not None else None,
    )
    app.state.matchmaker = matchmaker
    app.state.queue_limiter = make_rate_limiter(settings.redis_url)
    reconciler: asyncio.Task[None] | None = None
    if config.matchmaker_enabled:
        matchmaker.start()
        app.state.ready_checks["matchmaker"] = matchmaker.check_running
    if leaderboards.uses_redis:
        reconciler = asyncio.create_task(_reconcile_forever(app, config), name="lb-reconcile")
    try:
        yield
    finally:
        await cancel_and_wait(reconciler)
        await matchmaker.stop()
        await leaderboards.close()
        await app.state.queue_limiter.close()


async def _reconcile_forever(app: FastAPI, config: CompetitionSettings) -> None:
    interval = config.leaderboard_reconcile_seconds
    while True:
        await asyncio.sleep(interval)
        try:
            now = datetime.now(UTC)
            async with app.state.sessionmaker() as session:
                season = await current_season(session, now=now, length_days=config.season_days)
                await session.commit()
            for mode in sorted(RATED_MODES):
                await app.state.leaderboards.reconcile(
                    Board.of(season, mode), since=reconcile_since(now, interval)
                )
        except Exception:
            log.exception("leaderboard reconcile pass failed")


def register_rating_hooks(app: FastAPI, hooks: Any) -> None:
    """Count every finished match's result inside its transaction (`on_finished`), then push
    the players' new leaderboard entries into Redis after the commit (`after_finished`)."""

    async def on_finished(session: AsyncSession, match: FinishedMatch) -> None:
        applied = await apply_match_result(
            session,
            match,
            leaderboards=app.state.leaderboards,
            season_days=competition_settings(app).season_days,
        )
        if applied is not None and app.state.leaderboards.uses_redis:
            stage(session, app.state.leaderboards, match.id, applied.board, applied.entries)

    async def after_finished(match: FinishedMatch) -> None:
        # The rows this process wrote go out in one round trip; a result counted elsewhere
        # (another worker's report won) is read back from SQL instead.
        if not await app.state.leaderboards.push_committed(match.id):
            await copy_counted_match(app, match)

    hooks.on_finished.append(on_finished)
    hooks.after_finished.append(after_finished)


async def copy_counted_match(app: FastAPI, match: FinishedMatch) -> None:
    """Copy a counted match's players' entries (read from SQL, so whichever report counted
    it, and in whichever season) into Redis."""
    if rated_players(match) is None or not app.state.leaderboards.uses_redis:
        return
    async with app.state.sessionmaker() as session:
        season = await session.scalar(
            select(Season)
            .join(RatingChange, RatingChange.season_id == Season.id)
            .where(RatingChange.match_id == match.id)
            .limit(1)
        )
    if season is None:
        return
    players = [p for p in (match.first_player_id, match.second_player_id) if p is not None]
    await app.state.leaderboards.copy(Board.of(season, match.mode), players)


def install_competition(
    app: FastAPI, settings: CoreSettings, *, routers: Sequence[APIRouter]
) -> None:
    """Add the competitive layer to a built app: its routes, its runtime inside the app's
    lifespan, and the rating hooks on the match service's hooks."""
    for router in routers:
        app.include_router(router)
    outer = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(target: FastAPI) -> AsyncIterator[Any]:
        async with outer(target) as state:
            _register_hooks_once(app)
            async with competition_runtime(app, settings):
                yield state

    app.router.lifespan_context = lifespan
    _register_hooks_once(app)


def _register_hooks_once(app: FastAPI) -> None:
    hooks = getattr(app.state, "match_hooks", None)
    if hooks is None or getattr(app.state, "rating_hooks_registered", False):
        return
    register_rating_hooks(app, hooks)
    app.state.rating_hooks_registered = True
