"""Ratings: read a player's, and apply a finished match's result exactly once.

`apply_match_result` runs inside the transaction that records the match result (the match
service's `on_finished` hook), so a result and its rating change commit or fail together.
Exactly once comes from the database: the players' rating rows are locked in id order (two
reports of one match queue behind each other, and two matches sharing a player never
deadlock), a match already in the history is skipped, and the unique (match_id, player_id)
history row refuses any second write that slipped past.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyCore.db.engine import begin_as_writer
from VEZEPyGame.db.competition import Rating, RatingChange
from VEZEPyGame.services.leaderboards.seasons import current_season
from VEZEPyGame.services.leaderboards.service import Leaderboards
from VEZEPyGame.services.leaderboards.sql_store import GameCount
from VEZEPyGame.services.leaderboards.standings import Board, Standing
from VEZEPyGame.services.ratings.model import (
    INITIAL_MU,
    INITIAL_SIGMA,
    Outcome,
    Skill,
    opposite,
    rate_pair,
)

#: Modes whose results move ratings, each its own rating. Bot games move none.
RATED_MODES = frozenset({"ranked", "casual"})
HISTORY_LIMIT = 500


class FinishedMatch(Protocol):
    """What the ratings need of a finished match (the match service's `Match` has it)."""

    @property
    def id(self) -> str: ...
    @property
    def mode(self) -> str: ...
    @property
    def first_player_id(self) -> int | None: ...
    @property
    def second_player_id(self) -> int | None: ...
    @property
    def result(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class AppliedResult:
    board: Board
    player_ids: tuple[int, int]
    #: The players' leaderboard entries as this transaction wrote them (for Redis, after commit).
    entries: tuple[Standing, ...] = ()


def rated_players(match: FinishedMatch) -> tuple[int, int] | None:
    """The two human players of a rated, decided match; None when it moves no rating."""
    if match.mode not in RATED_MODES or getattr(match, "bot_level", None) is not None:
        return None
    first, second = match.first_player_id, match.second_player_id
    if first is None or second is None or first == second:
        return None
    if match.result not in ("first", "second", "draw"):
        return None
    return first, second


def first_outcome(result: str) -> Outcome:
    return {"first": "win", "second": "loss", "draw": "draw"}[result]  # type: ignore[return-value]


async def get_skill(session: AsyncSession, *, player_id: int, mode: str) -> Skill:
    rating = await session.get(Rating, (player_id, mode))
    return Skill(rating.mu, rating.sigma) if rating is not None else Skill()


async def list_ratings(session: AsyncSession, *, player_id: int) -> list[Rating]:
    rows = await session.scalars(
        select(Rating).where(Rating.player_id == player_id).order_by(Rating.mode)
    )
    return list(rows)


async def list_history(
    session: AsyncSession, *, player_id: int, mode: str, limit: int = HISTORY_LIMIT
) -> list[RatingChange]:
    """The player's most recent rating changes in a mode, oldest first."""
    rows = await session.scalars(
        select(RatingChange)
        .where(RatingChange.player_id == player_id, RatingChange.mode == mode)
        .order_by(RatingChange.id.desc())
        .limit(limit)
    )
    return list(rows)[::-1]


async def apply_match_result(
    session: AsyncSession,
    match: FinishedMatch,
    *,
    leaderboards: Leaderboards,
    season_days: int,
    now: datetime | None = None,
) -> AppliedResult | None:
    """Move both players' ratings and leaderboard entries for `match`, once (caller commits).

    Returns what changed (for the Redis copy after commit), or None when the match moves no
    rating or was already counted.
    """
    players = rated_players(match)
    if players is None:
        return None
    assert match.result is not None
    now = now or datetime.now(UTC)
    await begin_as_writer(session)
    ratings = await _lock_ratings(session, players, mode=match.mode, now=now)
    already = await session.scalar(select(exists().where(RatingChange.match_id == match.id)))
    if already:
        return None
    season = await current_season(session, now=now, length_days=season_days)
    first, second = ratings[players[0]], ratings[players[1]]
    outcome = first_outcome(match.result)
    new_first, new_second = rate_pair(
        Skill(first.mu, first.sigma), Skill(second.mu, second.sigma), outcome
    )
    changes = [
        _change(match, first, players[1], outcome, new_first, season.id, now),
        _change(match, second, players[0], opposite(outcome), new_second, season.id, now),
    ]
    try:
        async with session.begin_nested():
            session.add_all(changes)
            await session.flush()
    except IntegrityError:
        return None  # counted by a concurrent report that got here first
    board = Board.of(season, match.mode)
    _move(first, new_first, outcome, now)
    _move(second, new_second, opposite(outcome), now)
    await session.flush()
    entries = await leaderboards.record(
        await session.connection(),
        board,
        [
            GameCount(first.player_id, new_first.display, outcome),
            GameCount(second.player_id, new_second.display, opposite(outcome)),
        ],
        now=now,
    )
    return AppliedResult(board, players, tuple(entries))


async def _lock_ratings(
    session: AsyncSession, players: Sequence[int], *, mode: str, now: datetime
) -> dict[int, Rating]:
    """Both rating rows, created when missing, locked (PostgreSQL) in player-id order."""
    ordered = sorted(players)
    for player_id in ordered:
        if await session.get(Rating, (player_id, mode)) is None:
            try:
                async with session.begin_nested():
                    session.add(
                        Rating(
                            player_id=player_id,
                            mode=mode,
                            mu=INITIAL_MU,
                            sigma=INITIAL_SIGMA,
                            games=0,
                            wins=0,
                            losses=0,
                            draws=0,
                            updated_at=now,
                        )
                    )
                    await session.flush()
            except IntegrityError:
                pass  # created concurrently; the locking read below finds it
    rows = await session.scalars(
        select(Rating)
        .where(Rating.player_id.in_(ordered), Rating.mode == mode)
        .order_by(Rating.player_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {rating.player_id: rating for rating in rows}


def _change(
    match: FinishedMatch,
    before: Rating,
    opponent_id: int,
    outcome: Outcome,
    after: Skill,
    season_id: int,
    now: datetime,
) -> RatingChange:
    return RatingChange(
        match_id=match.id,
        player_id=before.player_id,
        opponent_id=opponent_id,
        mode=match.mode,
        season_id=season_id,
        outcome=outcome,
        mu_before=before.mu,
        sigma_before=before.sigma,
        mu_after=after.mu,
        sigma_after=after.sigma,
        created_at=now,
    )


def _move(rating: Rating, skill: Skill, outcome: Outcome, now: datetime) -> None:
    rating.mu, rating.sigma = skill.mu, skill.sigma
    rating.games += 1
    rating.wins += outcome == "win"
    rating.losses += outcome == "loss"
    rating.draws += outcome == "draw"
    rating.updated_at = now
