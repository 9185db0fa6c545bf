"""Leaderboards: SQL as the record, Redis as the hot path, both giving the same answers."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis.asyncio as redis_asyncio
from fastapi import FastAPI
from sqlalchemy import event, insert, select, update

from VEZEPyGame.db.competition import LeaderboardEntry, LeaderboardScoreCount
from VEZEPyGame.services.leaderboards.seasons import current_season
from VEZEPyGame.services.leaderboards.service import Leaderboards
from VEZEPyGame.services.leaderboards.standings import Board
from VEZEPyGame.services.matches.hooks import MatchHooks
from VEZEPyGame.services.matchmaking.runtime import register_rating_hooks
from VEZEPyGame.tests.competition_fixtures import (
    QUIET,
    FakeMatch,
    Minter,
    add_players,
    player_headers,
)
from VEZEPyGame.tests.conftest import GameAppFactory, Running, bearer


@pytest.fixture(params=["sql", "redis"])
def store(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def app(make_game_app: GameAppFactory, store: str, redis_url: str, prefix: str) -> FastAPI:
    return make_game_app(
        redis_url=redis_url if store == "redis" else None,
        leaderboard_redis_prefix=prefix,
        **QUIET,
    )


@pytest.fixture
async def client(app: FastAPI, running: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with running(app) as client:
        yield client


async def season_board(app: FastAPI, mode: str = "ranked") -> Board:
    async with app.state.sessionmaker() as session:
        season = await current_season(session, now=datetime.now(UTC), length_days=30)
        await session.commit()
    return Board.of(season, mode)


async def fill(app: FastAPI, board: Board, scores: list[int]) -> list[int]:
    """Players p0, p1, ... with these scores on the board, written straight to SQL."""
    ids = await add_players(app, *(f"p{i}" for i in range(len(scores))))
    now = datetime.now(UTC)
    async with app.state.engine.begin() as connection:
        await connection.execute(
            insert(LeaderboardEntry),
            [
                {
                    "season_id": board.season_id,
                    "mode": board.mode,
                    "player_id": player_id,
                    "score": score,
                    "games": 1,
                    "wins": 1,
                    "losses": 0,
                    "draws": 0,
                    "updated_at": now,
                }
                for player_id, score in zip(ids, scores, strict=True)
            ],
        )
        counts = Counter(scores)
        await connection.execute(
            insert(LeaderboardScoreCount),
            [
                {"season_id": board.season_id, "mode": board.mode, "score": score, "players": n}
                for score, n in counts.items()
            ],
        )
    return ids


async def ready_boards(app: FastAPI, board: Board) -> Leaderboards:
    """The app's leaderboards with the board ready in Redis (when it uses Redis)."""
    boards: Leaderboards = app.state.leaderboards
    await boards.top(board, limit=1)  # the first read schedules the copy
    await boards.wait_for_rebuilds()
    return boards


async def test_top_rank_and_around_follow_score_then_player_id(
    app: FastAPI, client: httpx.AsyncClient, store: str
) -> None:
    board = await season_board(app)
    ids = await fill(app, board, [1500, 1700, 1600, 1700, 1400])
    boards = await ready_boards(app, board)
    top = await boards.top(board, limit=10)
    assert [(e.rank, e.handle, e.score) for e in top] == [
        (1, "p3", 1700),  # equal scores: the higher player id first, in SQL and Redis alike
        (2, "p1", 1700),
        (3, "p2", 1600),
        (4, "p0", 1500),
        (5, "p4", 1400),
    ]
    place = await boards.neighbourhood(board, ids[2], span=1)
    assert place is not None
    assert place.me.rank == 3
    assert [e.handle for e in place.around] == ["p1", "p2", "p0"]
    edge = await boards.neighbourhood(board, ids[3], span=2)
    assert edge is not None and [e.rank for e in edge.around] == [1, 2, 3]
    assert await boards.neighbourhood(board, 999_999, span=2) is None
    assert await boards.top(board, limit=2, offset=3) == top[3:5]


async def test_redis_and_sql_agree_on_a_random_board(
    make_game_app: GameAppFactory, running: Running, redis_url: str, prefix: str
) -> None:
    app = make_game_app(redis_url=redis_url, leaderboard_redis_prefix=prefix, **QUIET)
    async with running(app):
        board = await season_board(app)
        rng = random.Random(7)
        ids = await fill(app, board, [rng.randint(1400, 1460) for _ in range(300)])  # many ties
        fast = await ready_boards(app, board)
        sql = Leaderboards(app.state.engine, None)
        assert await fast.top(board, limit=100, offset=50) == await sql.top(
            board, limit=100, offset=50
        )
        for player_id in rng.sample(ids, 25):
            assert await fast.neighbourhood(board, player_id, span=4) == await sql.neighbourhood(
                board, player_id, span=4
            )


async def test_score_buckets_stay_equal_to_the_entries_under_concurrent_submits(
    app: FastAPI, client: httpx.AsyncClient, store: str
) -> None:
    board = await season_board(app)
    ids = await add_players(app, *(f"q{i}" for i in range(12)))
    boards: Leaderboards = app.state.leaderboards
    rng = random.Random(3)
    submits = [
        boards.submit(
            board,
            player_id=rng.choice(ids),
            score=rng.randint(1490, 1510),
            outcome=rng.choice(("win", "loss", "draw")),
        )
        for _ in range(60)
    ]
    await asyncio.gather(*submits)
    async with app.state.engine.connect() as connection:
        entries = Counter(
            (await connection.execute(select(LeaderboardEntry.score))).scalars().all()
        )
        buckets = {
            row.score: row.players
            for row in await connection.execute(select(LeaderboardScoreCount))
            if row.players
        }
    assert buckets == dict(entries)
    sql = Leaderboards(app.state.engine, None)
    top = await sql.top(board, limit=100)
    for entry in top:
        found = await sql.standing(board, entry.player_id)
        assert found is not None and found.rank == entry.rank


async def test_redis_is_rebuilt_from_sql_when_missing_and_never_goes_back_in_time(
    make_game_app: GameAppFactory, running: Running, redis_url: str, prefix: str
) -> None:
    app = make_game_app(redis_url=redis_url, leaderboard_redis_prefix=prefix, **QUIET)
    async with running(app):
        board = await season_board(app)
        ids = await fill(app, board, [1500, 1600])
        boards: Leaderboards = app.state.leaderboards
        client = redis_asyncio.Redis.from_url(redis_url)
        try:
            assert (
                await client.exists(f"{prefix}:{board.season_id}.{board.started_us}:ranked:ready")
                == 0
            )
            first = await boards.top(board, limit=10)  # answered from SQL, copy scheduled
            await boards.wait_for_rebuilds()
            assert await client.zcard(f"{prefix}:{board.season_id}.{board.started_us}:ranked") == 2
            # SQL changes behind Redis' back: Redis keeps answering until the row is copied.
            async with app.state.engine.begin() as connection:
                await connection.execute(
                    update(LeaderboardEntry)
                    .where(LeaderboardEntry.player_id == ids[0])
                    .values(score=1700, games=2, updated_at=datetime.now(UTC))
                )
            assert await boards.top(board, limit=10) == first
            # The reconcile pass finds the row changed since its look-back and copies it.
            assert await boards.reconcile(board, since=datetime.now(UTC) - timedelta(hours=1)) == 1
            moved = await boards.top(board, limit=10)
            assert [(e.handle, e.score, e.games) for e in moved] == [
                ("p0", 1700, 2),
                ("p1", 1600, 1),
            ]
            # An old copy arriving late (version 1 < 2) changes nothing.
            stale = first[1]
            assert stale.player_id == ids[0]
            assert await boards._redis.push(board, [stale]) == 0  # type: ignore[union-attr]
            assert await boards.top(board, limit=10) == moved
            # The whole set gone (Redis restarted): rebuilt from SQL on the next read.
            await client.delete(*[k async for k in client.scan_iter(f"{prefix}:*")])
            assert await boards.top(board, limit=10) == moved
            await boards.wait_for_rebuilds()
            assert (
                await client.exists(f"{prefix}:{board.season_id}.{board.started_us}:ranked:ready")
                == 1
            )
        finally:
            await client.aclose()


async def test_a_counted_match_reaches_the_board_through_the_hooks(
    app: FastAPI, client: httpx.AsyncClient, mint: Minter, store: str
) -> None:
    hooks = MatchHooks()
    register_rating_hooks(app, hooks)
    alice, bob = await add_players(app, "alice", "bob")
    board = await season_board(app)
    await ready_boards(app, board)
    match = FakeMatch(alice, bob, "first")
    for _report in range(2):  # reported twice: counted once
        async with app.state.sessionmaker() as session:
            await hooks.run_on_finished(session, match)  # type: ignore[arg-type]
            await session.commit()
        await hooks.run_after_finished(match)  # type: ignore[arg-type]
    mine = await client.get("/api/leaderboards/ranked/me", headers=player_headers(mint, "alice"))
    top = await client.get("/api/leaderboards/ranked", headers=player_headers(mint, "bob"))
    assert mine.status_code == 200, mine.text
    assert mine.json()["me"]["rank"] == 1 and mine.json()["me"]["games"] == 1
    assert [e["handle"] for e in top.json()["entries"]] == ["alice", "bob"]
    assert top.json()["entries"][1]["losses"] == 1
    assert top.json()["season"]["number"] == 1


async def test_redis_gets_only_committed_rows_and_without_reading_sql_again(
    make_game_app: GameAppFactory, running: Running, redis_url: str, prefix: str
) -> None:
    """A result's rows reach Redis after its commit in one push (no SQL statement after the
    commit); a result whose transaction rolls back never reaches Redis."""
    app = make_game_app(redis_url=redis_url, leaderboard_redis_prefix=prefix, **QUIET)
    async with running(app):
        hooks = MatchHooks()
        register_rating_hooks(app, hooks)
        alice, bob, carol = await add_players(app, "alice", "bob", "carol")
        board = await season_board(app)
        boards = await ready_boards(app, board)
        # Rolled back: nothing staged survives, nothing is pushed.
        lost = FakeMatch(alice, carol, "first")
        async with app.state.sessionmaker() as session:
            await hooks.run_on_finished(session, lost)  # type: ignore[arg-type]
            await session.rollback()
        assert await boards.push_committed(lost.id) is False
        # Committed: pushed from what the transaction wrote.
        won = FakeMatch(bob, alice, "first")
        async with app.state.sessionmaker() as session:
            await hooks.run_on_finished(session, won)  # type: ignore[arg-type]
            await session.commit()
        statements: list[str] = []

        def count(*args: object) -> None:
            statements.append(str(args[2]))

        event.listen(app.state.engine.sync_engine, "before_cursor_execute", count)
        try:
            await hooks.run_after_finished(won)  # type: ignore[arg-type]
        finally:
            event.remove(app.state.engine.sync_engine, "before_cursor_execute", count)
        assert statements == []
        client = redis_asyncio.Redis.from_url(redis_url)
        try:
            members = await client.zrange(
                f"{prefix}:{board.season_id}.{board.started_us}:ranked", 0, -1
            )
        finally:
            await client.aclose()
        # carol's game was rolled back: never in Redis.
        in_redis = sorted(int(m) for m in members if isinstance(m, bytes))
        assert in_redis == sorted([alice, bob])
        top = await boards.top(board, limit=10)
        assert [(e.handle, e.games) for e in top] == [("bob", 1), ("alice", 1)]


async def test_leaderboard_api_bounds_and_errors(
    app: FastAPI, client: httpx.AsyncClient, mint: Minter, store: str
) -> None:
    await add_players(app, "alice")
    alice = player_headers(mint, "alice")
    not_on_board = await client.get("/api/leaderboards/ranked/me", headers=alice)
    unknown_mode = await client.get("/api/leaderboards/bot", headers=alice)
    too_many = await client.get("/api/leaderboards/ranked?limit=101", headers=alice)
    no_season = await client.get("/api/leaderboards/ranked?season=7", headers=alice)
    anonymous = await client.get("/api/leaderboards/ranked")
    assert not_on_board.status_code == 404
    assert unknown_mode.status_code == 422
    assert too_many.status_code == 422
    assert no_season.status_code == 404
    assert anonymous.status_code == 401


async def test_a_new_season_is_admin_only_and_starts_empty_boards(
    app: FastAPI, client: httpx.AsyncClient, mint: Minter, store: str
) -> None:
    board = await season_board(app)
    await fill(app, board, [1500, 1600])
    player = player_headers(mint, "p0")
    admin = bearer(mint("svc:ops", audience="veze-game", scopes=("game.admin",)))
    refused = await client.post("/api/seasons", json={}, headers=player)
    current = (await client.get("/api/seasons/current", headers=player)).json()
    created = await client.post("/api/seasons", json={"name": "Winter", "days": 7}, headers=admin)
    after = (await client.get("/api/seasons/current", headers=player)).json()
    new_top = (await client.get("/api/leaderboards/ranked", headers=player)).json()
    old_top = (await client.get("/api/leaderboards/ranked?season=1", headers=player)).json()

    assert refused.status_code == 403
    assert created.status_code == 201, created.text
    assert (current["number"], after["number"], after["name"]) == (1, 2, "Winter")
    assert after["starts_at"] >= current["starts_at"]
    assert new_top["season"]["number"] == 2 and new_top["entries"] == []
    assert [e["handle"] for e in old_top["entries"]] == ["p1", "p0"]
    old = (await client.get("/api/leaderboards/ranked?season=1", headers=player)).json()
    assert old["season"]["ends_at"] <= after["starts_at"]


async def test_an_ended_season_rolls_over_by_itself(
    app: FastAPI, client: httpx.AsyncClient, store: str
) -> None:
    from VEZEPyGame.db.competition import Season

    board = await season_board(app)
    async with app.state.engine.begin() as connection:
        await connection.execute(
            update(Season).where(Season.id == board.season_id).values(ends_at=datetime.now(UTC))
        )
    following = await season_board(app)
    assert following.season_id != board.season_id
