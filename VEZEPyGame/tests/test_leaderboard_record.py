"""The leaderboard's SQL write: two statements that count games into the entries and move the
score buckets, inside the caller's transaction, correct under concurrent writers; and the Redis
copy after it, healed by the reconcile when the process dies between the commit and the push."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from redis.exceptions import RedisError
from sqlalchemy import event, select

from VEZEPyGame.db.competition import LeaderboardEntry, LeaderboardScoreCount
from VEZEPyGame.services.leaderboards.seasons import current_season
from VEZEPyGame.services.leaderboards.service import Leaderboards
from VEZEPyGame.services.leaderboards.sql_store import GameCount
from VEZEPyGame.services.leaderboards.standings import Board, Standing
from VEZEPyGame.tests.competition_fixtures import QUIET, add_players
from VEZEPyGame.tests.conftest import GameAppFactory, Running

Entries = dict[int, tuple[int, int, int, int, int]]


async def season_board(app: FastAPI) -> Board:
    async with app.state.sessionmaker() as session:
        season = await current_season(session, now=datetime.now(UTC), length_days=30)
        await session.commit()
    return Board.of(season, "ranked")


async def stored(app: FastAPI) -> Entries:
    """Every entry (score, games, wins, losses, draws) by player, after checking that the score
    buckets count exactly the entries' scores."""
    async with app.state.engine.connect() as connection:
        rows = await connection.execute(
            select(
                LeaderboardEntry.player_id,
                LeaderboardEntry.score,
                LeaderboardEntry.games,
                LeaderboardEntry.wins,
                LeaderboardEntry.losses,
                LeaderboardEntry.draws,
            )
        )
        entries = {row[0]: tuple(row[1:]) for row in rows}
        buckets = {
            row.score: row.players
            for row in await connection.execute(select(LeaderboardScoreCount))
            if row.players
        }
    assert buckets == dict(Counter(entry[0] for entry in entries.values()))
    return entries


async def record(app: FastAPI, board: Board, games: list[GameCount]) -> list[Standing]:
    boards: Leaderboards = app.state.leaderboards
    async with app.state.engine.begin() as connection:
        return await boards.record(connection, board, games, now=datetime.now(UTC))


async def test_a_record_counts_games_moves_buckets_and_returns_the_rows_in_two_statements(
    make_game_app: GameAppFactory, running: Running
) -> None:
    app = make_game_app(redis_url=None, **QUIET)
    async with running(app):
        board = await season_board(app)
        alice, bob, carol = await add_players(app, "alice", "bob", "carol")
        statements: list[str] = []

        def count(*args: object) -> None:
            statements.append(str(args[2]))

        # Counted on the record's own connection only: the app's background loops share the
        # engine and may run a statement of their own meanwhile.
        boards: Leaderboards = app.state.leaderboards
        async with app.state.engine.begin() as connection:
            event.listen(connection.sync_connection, "before_cursor_execute", count)
            try:
                # Both new (given in reverse id order: written in id order all the same).
                rows = await boards.record(
                    connection,
                    board,
                    [GameCount(bob, 1490, "loss"), GameCount(alice, 1510, "win")],
                    now=datetime.now(UTC),
                )
            finally:
                event.remove(connection.sync_connection, "before_cursor_execute", count)
        assert len(statements) == 2, statements
        assert sorted(rows, key=lambda r: r.player_id) == [
            Standing(0, alice, "alice", 1510, 1, 1, 0, 0),
            Standing(0, bob, "bob", 1490, 1, 0, 1, 0),
        ]
        assert await stored(app) == {alice: (1510, 1, 1, 0, 0), bob: (1490, 1, 0, 1, 0)}
        # One moves up (its old bucket loses it), one is new, on a bucket another holds.
        await record(app, board, [GameCount(alice, 1530, "win"), GameCount(carol, 1490, "loss")])
        # Same score as before: the bucket stays, the game is counted.
        await record(app, board, [GameCount(bob, 1490, "draw")])
        # Two players swapping scores: both buckets keep their counts.
        await record(app, board, [GameCount(bob, 1530, "win"), GameCount(alice, 1490, "loss")])
        assert await stored(app) == {
            alice: (1490, 3, 2, 1, 0),
            bob: (1530, 3, 1, 1, 1),
            carol: (1490, 1, 0, 1, 0),
        }
        sql = Leaderboards(app.state.engine, None)
        assert [(e.rank, e.handle) for e in await sql.top(board, limit=10)] == [
            (1, "bob"),
            (2, "carol"),
            (3, "alice"),
        ]
        with pytest.raises(ValueError, match="one game per player"):
            await record(app, board, [GameCount(bob, 1, "win"), GameCount(bob, 2, "loss")])


async def test_a_record_is_part_of_the_callers_transaction_even_as_its_first_statement(
    make_game_app: GameAppFactory, running: Running
) -> None:
    """Rolled back, nothing of it stays: neither statement ran and committed on its own (on
    SQLite a statement the driver does not see as a write would run outside the transaction)."""
    app = make_game_app(redis_url=None, **QUIET)
    async with running(app):
        board = await season_board(app)
        alice, bob = await add_players(app, "alice", "bob")
        await record(app, board, [GameCount(alice, 1500, "win")])
        before = await stored(app)
        boards: Leaderboards = app.state.leaderboards
        async with app.state.engine.connect() as connection:
            transaction = await connection.begin()
            await boards.record(
                connection,
                board,
                [GameCount(alice, 1600, "win"), GameCount(bob, 1400, "loss")],
                now=datetime.now(UTC),
            )
            await transaction.rollback()
        assert await stored(app) == before


async def test_concurrent_games_of_the_same_new_players_count_once_each(
    make_game_app: GameAppFactory, running: Running
) -> None:
    """Many first games of the same two players at once (on PostgreSQL they race to create the
    entry): every game counted once, and the buckets equal to the entries."""
    app = make_game_app(redis_url=None, **QUIET)
    async with running(app):
        board = await season_board(app)
        alice, bob = await add_players(app, "alice", "bob")
        boards: Leaderboards = app.state.leaderboards

        async def game(n: int) -> None:
            first, second = (alice, bob) if n % 2 else (bob, alice)
            await boards.submit(board, player_id=first, score=1500 + n % 5, outcome="win")
            await boards.submit(board, player_id=second, score=1500 - n % 3, outcome="loss")

        await asyncio.gather(*(game(n) for n in range(16)))
        entries = await stored(app)
        assert {player: entry[1:] for player, entry in entries.items()} == {
            alice: (16, 8, 8, 0),
            bob: (16, 8, 8, 0),
        }


async def test_a_crash_between_the_commit_and_the_redis_copy_is_healed_by_the_reconcile(
    make_game_app: GameAppFactory, running: Running, redis_url: str, prefix: str
) -> None:
    """A committed result is acknowledged even when its Redis copy fails (or the process dies
    before it): SQL holds it, Redis is behind until the reconcile pass copies it."""
    app = make_game_app(redis_url=redis_url, leaderboard_redis_prefix=prefix, **QUIET)
    async with running(app):
        board = await season_board(app)
        alice, bob = await add_players(app, "alice", "bob")
        boards: Leaderboards = app.state.leaderboards
        sql = Leaderboards(app.state.engine, None)
        await boards.submit(board, player_id=alice, score=1500, outcome="win")
        await boards.submit(board, player_id=bob, score=1400, outcome="loss")
        await boards.top(board, limit=1)  # the first read schedules the copy
        await boards.wait_for_rebuilds()
        before = await boards.top(board, limit=10)
        assert before == await sql.top(board, limit=10)

        # The process "dies" after the commit: the rows are written, never pushed.
        await record(app, board, [GameCount(bob, 1600, "win"), GameCount(alice, 1490, "loss")])
        # Redis fails under the next submit: it still returns (SQL committed it).
        redis_boards = boards._redis
        assert redis_boards is not None
        original = redis_boards.push

        async def broken(*_args: object, **_kwargs: object) -> int:
            raise RedisError("down")

        redis_boards.push = broken  # type: ignore[method-assign]
        try:
            await boards.submit(board, player_id=alice, score=1480, outcome="loss")
        finally:
            redis_boards.push = original  # type: ignore[method-assign]
        assert await boards.top(board, limit=10) == before  # behind SQL
        expected = await sql.top(board, limit=10)
        assert [(e.handle, e.score, e.games) for e in expected] == [
            ("bob", 1600, 2),
            ("alice", 1480, 3),
        ]
        assert await boards.reconcile(board, since=datetime.now(UTC) - timedelta(minutes=5)) == 2
        assert await boards.top(board, limit=10) == expected
        # The lost push arriving late (older versions) changes nothing.
        assert await redis_boards.push(board, before) == 0
        assert await boards.top(board, limit=10) == expected
