"""Ratings: the model moves the right way; a result counts exactly once, also concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from VEZEPyGame.db.competition import LeaderboardEntry, Rating, RatingChange
from VEZEPyGame.services.ratings.model import INITIAL_MU, Skill, rate_pair
from VEZEPyGame.services.ratings.service import apply_match_result
from VEZEPyGame.tests.competition_fixtures import (
    QUIET,
    FakeMatch,
    Minter,
    add_players,
    player_headers,
)
from VEZEPyGame.tests.conftest import GameAppFactory, Running

skills = st.builds(Skill, mu=st.floats(800, 2400), sigma=st.floats(60, 350))


@given(skills, skills)
def test_the_winner_gains_and_the_loser_loses(winner: Skill, loser: Skill) -> None:
    new_winner, new_loser = rate_pair(winner, loser, "win")
    assert new_winner.mu > winner.mu
    assert new_loser.mu < loser.mu
    # Uncertainty shrinks (up to the small per-game drift openskill adds, tau).
    assert new_winner.sigma <= winner.sigma + 1 and new_loser.sigma <= loser.sigma + 1


@given(skills, skills)
def test_a_draw_pulls_the_two_ratings_together(a: Skill, b: Skill) -> None:
    new_a, new_b = rate_pair(a, b, "draw")
    assert abs(new_a.mu - new_b.mu) <= abs(a.mu - b.mu) + 1e-6
    if a.mu < b.mu:
        assert new_a.mu >= a.mu and new_b.mu <= b.mu


def test_beating_a_stronger_player_is_worth_more() -> None:
    upset, _ = rate_pair(Skill(1400, 150), Skill(1800, 150), "win")
    expected, _ = rate_pair(Skill(1800, 150), Skill(1400, 150), "win")
    assert upset.mu - 1400 > expected.mu - 1800 > 0


@pytest.fixture
async def app(make_game_app: GameAppFactory) -> FastAPI:
    return make_game_app(**QUIET)


@pytest.fixture
async def client(app: FastAPI, running: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with running(app) as client:
        yield client


async def apply(app: FastAPI, match: FakeMatch) -> bool:
    async with app.state.sessionmaker() as session:
        applied = await apply_match_result(
            session, match, leaderboards=app.state.leaderboards, season_days=30
        )
        await session.commit()
    return applied is not None


async def ratings_of(app: FastAPI, mode: str = "ranked") -> dict[int, Rating]:
    async with app.state.sessionmaker() as session:
        rows = await session.scalars(select(Rating).where(Rating.mode == mode))
        return {row.player_id: row for row in rows}


async def count(app: FastAPI, model: type[object]) -> int:
    async with app.state.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_ranked_result_moves_ratings_once(app: FastAPI, client: httpx.AsyncClient) -> None:
    alice, bob = await add_players(app, "alice", "bob")
    match = FakeMatch(alice, bob, "second")
    assert await apply(app, match) is True
    assert await apply(app, match) is False  # reported again: nothing more happens
    ratings = await ratings_of(app)
    assert ratings[bob].mu > INITIAL_MU > ratings[alice].mu
    assert (ratings[bob].wins, ratings[bob].games, ratings[alice].losses) == (1, 1, 1)
    assert await count(app, RatingChange) == 2
    assert await count(app, LeaderboardEntry) == 2


async def test_concurrent_reports_of_one_match_count_once(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice, bob = await add_players(app, "alice", "bob")
    match = FakeMatch(alice, bob, "first")
    results = await asyncio.gather(*(apply(app, match) for _ in range(6)))
    assert results.count(True) == 1
    ratings = await ratings_of(app)
    assert ratings[alice].games == ratings[bob].games == 1
    single, _ = rate_pair(Skill(), Skill(), "win")
    assert ratings[alice].mu == pytest.approx(single.mu)
    assert await count(app, RatingChange) == 2


async def test_concurrent_matches_sharing_a_player_all_count(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice, bob, carol, dave = await add_players(app, "alice", "bob", "carol", "dave")
    matches = [
        FakeMatch(alice, bob, "first"),
        FakeMatch(carol, alice, "second"),
        FakeMatch(alice, dave, "draw"),
        FakeMatch(bob, carol, "first"),
    ]
    assert all(await asyncio.gather(*(apply(app, m) for m in matches)))
    ratings = await ratings_of(app)
    assert ratings[alice].games == 3 and (ratings[alice].wins, ratings[alice].draws) == (2, 1)
    assert sum(r.games for r in ratings.values()) == 8


async def test_the_history_row_is_the_exactly_once_guard(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice, bob = await add_players(app, "alice", "bob")
    match = FakeMatch(alice, bob, "first")
    await apply(app, match)
    async with app.state.sessionmaker() as session:
        [change] = await session.scalars(
            select(RatingChange).where(RatingChange.player_id == alice)
        )
        session.add(
            RatingChange(
                match_id=match.id,
                player_id=alice,
                opponent_id=bob,
                mode="ranked",
                season_id=change.season_id,
                outcome="win",
                mu_before=1,
                sigma_before=1,
                mu_after=1,
                sigma_after=1,
                created_at=change.created_at,
            )
        )
        with pytest.raises(IntegrityError):
            await session.flush()


@pytest.mark.parametrize(
    "match",
    [
        FakeMatch(1, None, "first", mode="ranked", bot_level=2),  # a bot filled the seat
        FakeMatch(1, None, "first", mode="bot", bot_level=1),
        FakeMatch(1, 2, "first", mode="bot"),
        FakeMatch(1, 2, "aborted"),
        FakeMatch(1, 1, "first"),
    ],
)
async def test_bot_games_and_undecided_matches_move_nothing(
    app: FastAPI, client: httpx.AsyncClient, match: FakeMatch
) -> None:
    await add_players(app, "alice", "bob")
    assert await apply(app, match) is False
    assert await count(app, RatingChange) == 0
    assert await count(app, Rating) == 0


async def test_casual_keeps_its_own_rating(app: FastAPI, client: httpx.AsyncClient) -> None:
    alice, bob = await add_players(app, "alice", "bob")
    await apply(app, FakeMatch(alice, bob, "first", mode="casual"))
    assert alice in await ratings_of(app, "casual")
    assert await ratings_of(app, "ranked") == {}


async def test_my_ratings_and_history_over_http(
    app: FastAPI, client: httpx.AsyncClient, mint: Minter
) -> None:
    alice, bob = await add_players(app, "alice", "bob")
    await apply(app, FakeMatch(alice, bob, "first"))
    await apply(app, FakeMatch(bob, alice, "draw"))
    headers = player_headers(mint, "alice")
    ratings = (await client.get("/api/ratings/me", headers=headers)).json()
    history = (await client.get("/api/ratings/me/history", headers=headers)).json()
    casual = (await client.get("/api/ratings/me/history?mode=casual", headers=headers)).json()
    bad = await client.get("/api/ratings/me/history?mode=bot", headers=headers)
    stranger = await client.get("/api/ratings/me", headers=player_headers(mint, "nobody"))

    by_mode = {r["mode"]: r for r in ratings}
    assert by_mode["casual"] == {
        "mode": "casual",
        "rating": 1500,
        "mu": 1500.0,
        "sigma": 350.0,
        "games": 0,
        "wins": 0,
        "losses": 0,
        "draws": 0,
    }
    assert by_mode["ranked"]["games"] == 2 and by_mode["ranked"]["wins"] == 1
    assert [h["outcome"] for h in history] == ["win", "draw"]
    assert history[0]["rating_before"] == 1500 and history[0]["delta"] > 0
    assert history[1]["rating_before"] == history[0]["rating_after"]
    assert history[-1]["rating_after"] == by_mode["ranked"]["rating"]
    assert history[0]["opponent_handle"] == "bob"
    assert casual == []
    assert bad.status_code == 422
    assert stranger.status_code == 404
