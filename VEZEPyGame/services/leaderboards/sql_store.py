"""The leaderboard record in SQL, read with compiled Core statements (no ORM per row).

Every read walks an index: top-N the `(season_id, mode, score, player_id)` index backwards from
the best; a rank sums the score buckets above (`leaderboard_score_counts`, one row per distinct
score) and counts the few entries tied with it; around-me is that rank and two short walks.
A result is counted in two statements written per database (`record_outcomes`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from VEZEPyCore.db.types import UTCDateTime
from VEZEPyGame.db.competition import LeaderboardEntry, LeaderboardScoreCount
from VEZEPyGame.db.models import Player
from VEZEPyGame.services.leaderboards.standings import Board, Neighbourhood, Outcome, Standing

E = LeaderboardEntry
C = LeaderboardScoreCount
_COLUMNS = (E.player_id, Player.handle, E.score, E.games, E.wins, E.losses, E.draws)


def _on_board(board: Board) -> Any:
    return and_(E.season_id == board.season_id, E.mode == board.mode)


def _standing(rank: int, row: Sequence[Any]) -> Standing:
    player_id, handle, score, games, wins, losses, draws = row
    return Standing(rank, player_id, handle, score, games, wins, losses, draws)


def _entries() -> Any:
    return select(*_COLUMNS).join(Player, Player.id == E.player_id)


async def top(
    connection: AsyncConnection, board: Board, *, limit: int, offset: int = 0
) -> list[Standing]:
    rows = await connection.execute(
        _entries()
        .where(_on_board(board))
        .order_by(E.score.desc(), E.player_id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [_standing(offset + index + 1, row) for index, row in enumerate(rows)]


async def standing(connection: AsyncConnection, board: Board, player_id: int) -> Standing | None:
    """The player's entry and rank, in one statement: players with a better score come from
    the buckets, those tied with a higher id (the tie order) from the entries' index."""
    better = (
        select(func.coalesce(func.sum(C.players), 0))
        .where(C.season_id == board.season_id, C.mode == board.mode, C.score > E.score)
        .scalar_subquery()
    )
    tied = aliased(E)
    tied_ahead = (
        select(func.count())
        .select_from(tied)
        .where(
            tied.season_id == board.season_id,
            tied.mode == board.mode,
            tied.score == E.score,
            tied.player_id > E.player_id,
        )
        .scalar_subquery()
    )
    row = (
        await connection.execute(
            select(*_COLUMNS, better, tied_ahead)
            .join(Player, Player.id == E.player_id)
            .where(_on_board(board), E.player_id == player_id)
        )
    ).first()
    if row is None:
        return None
    return _standing(int(row[7]) + int(row[8]) + 1, row[:7])


async def neighbourhood(
    connection: AsyncConnection, board: Board, player_id: int, *, span: int
) -> Neighbourhood | None:
    me = await standing(connection, board, player_id)
    if me is None:
        return None
    key = tuple_(E.score, E.player_id)
    mine = tuple_(me.score, me.player_id)
    above = list(
        await connection.execute(
            _entries()
            .where(_on_board(board), key > mine)
            .order_by(E.score, E.player_id)
            .limit(span)
        )
    )
    below = list(
        await connection.execute(
            _entries()
            .where(_on_board(board), key < mine)
            .order_by(E.score.desc(), E.player_id.desc())
            .limit(span)
        )
    )
    around = [_standing(me.rank - index - 1, row) for index, row in enumerate(above)][::-1]
    around.append(me)
    around.extend(_standing(me.rank + index + 1, row) for index, row in enumerate(below))
    return Neighbourhood(me, around)


async def rows_for(
    connection: AsyncConnection, board: Board, player_ids: Sequence[int]
) -> list[Standing]:
    """The entries of these players (rank 0: not computed), to copy into Redis."""
    rows = await connection.execute(
        _entries().where(_on_board(board), E.player_id.in_(list(player_ids)))
    )
    return [_standing(0, row) for row in rows]


async def rows_after(
    connection: AsyncConnection, board: Board, *, after_player_id: int, limit: int
) -> list[Standing]:
    """A page of the whole board in player-id order (keyset paging), for a Redis rebuild."""
    rows = await connection.execute(
        _entries()
        .where(_on_board(board), E.player_id > after_player_id)
        .order_by(E.player_id)
        .limit(limit)
    )
    return [_standing(0, row) for row in rows]


async def rows_changed_since(
    connection: AsyncConnection, board: Board, *, since: datetime, limit: int
) -> list[Standing]:
    rows = await connection.execute(
        _entries().where(_on_board(board), E.updated_at >= since).limit(limit)
    )
    return [_standing(0, row) for row in rows]


@dataclass(frozen=True, slots=True)
class GameCount:
    """One counted game for one player: their new score and how the game went."""

    player_id: int
    score: int
    outcome: Outcome


async def record_outcomes(
    connection: AsyncConnection, board: Board, games: Sequence[GameCount], *, now: datetime
) -> list[Standing]:
    """Count games into the players' entries and the score buckets, in the caller's
    transaction, in two statements whatever the number of players; the players' entries as
    they now stand (rank 0: not computed), for the Redis copy after the commit.

    Each statement costs a round trip (on SQLite four hops to aiosqlite's thread and back),
    which is what a write pays, far more than the indexed work itself: so the SQL does the
    looping. How the two statements keep concurrent writers correct differs by database (see
    `_record_sqlite` and `_record_postgres`)."""
    if not games:
        return []
    ordered = sorted(games, key=lambda g: g.player_id)
    if len({game.player_id for game in ordered}) != len(ordered):
        raise ValueError("one game per player and call")
    if connection.dialect.name == "postgresql":
        return await _record_postgres(connection, board, ordered, now=now)
    return await _record_sqlite(connection, board, ordered, now=now)


# SQLite has one writer at a time. The bucket statement is a write, so it takes the write
# lock as it starts (before it reads the old scores: no other writer can change them until
# the commit, and a read-then-write transaction cannot fail with SQLITE_BUSY_SNAPSHOT). It
# moves each changed player from their old score's bucket to the new one's; the entries are
# then upserted, each returning the entry as written with the player's handle (no read
# after the write). The games arrive as one JSON array: [[player, score, win, loss, draw], ...].
# Both statements start with INSERT, their WITH inside: Python's sqlite3 opens the transaction
# (its implicit BEGIN) only before a statement whose first word is INSERT, UPDATE, DELETE or
# REPLACE; one starting with WITH would run and commit on its own.
_SQLITE_BUCKETS = text(
    """
    INSERT INTO leaderboard_score_counts AS c (season_id, mode, score, players)
    WITH
    g AS MATERIALIZED (
        SELECT json_extract(value, '$[0]') AS player_id, json_extract(value, '$[1]') AS score,
               json_extract(value, '$[2]') AS wins, json_extract(value, '$[3]') AS losses,
               json_extract(value, '$[4]') AS draws
          FROM json_each(:games)
    ),
    old AS MATERIALIZED (
        SELECT g.player_id, g.score AS new_score, e.score AS old_score
          FROM g LEFT JOIN leaderboard_entries AS e
            ON e.season_id = :season_id AND e.mode = :mode AND e.player_id = g.player_id
    ),
    moves (score, players) AS (
        SELECT new_score, 1 FROM old WHERE old_score IS NULL OR old_score <> new_score
        UNION ALL
        SELECT old_score, -1 FROM old WHERE old_score <> new_score
    )
    SELECT :season_id, :mode, score, sum(players) FROM moves WHERE true
     GROUP BY score HAVING sum(players) <> 0 ORDER BY score
    ON CONFLICT (season_id, mode, score) DO UPDATE SET players = c.players + excluded.players
    """
)
_SQLITE_ENTRIES = text(
    """
    INSERT INTO leaderboard_entries
           (season_id, mode, player_id, score, games, wins, losses, draws, updated_at)
    WITH
    g AS MATERIALIZED (
        SELECT json_extract(value, '$[0]') AS player_id, json_extract(value, '$[1]') AS score,
               json_extract(value, '$[2]') AS wins, json_extract(value, '$[3]') AS losses,
               json_extract(value, '$[4]') AS draws
          FROM json_each(:games)
    )
    SELECT :season_id, :mode, player_id, score, 1, wins, losses, draws, :now FROM g WHERE true
    ON CONFLICT (season_id, mode, player_id) DO UPDATE
       SET score = excluded.score, games = games + 1, wins = wins + excluded.wins,
           losses = losses + excluded.losses, draws = draws + excluded.draws,
           updated_at = excluded.updated_at
    RETURNING player_id,
              (SELECT handle FROM players WHERE players.id = leaderboard_entries.player_id),
              score, games, wins, losses, draws
    """
).bindparams(bindparam("now", type_=UTCDateTime()))


async def _record_sqlite(
    connection: AsyncConnection, board: Board, games: Sequence[GameCount], *, now: datetime
) -> list[Standing]:
    document = json.dumps(
        [
            [
                game.player_id,
                game.score,
                int(game.outcome == "win"),
                int(game.outcome == "loss"),
                int(game.outcome == "draw"),
            ]
            for game in games
        ],
        separators=(",", ":"),
    )
    where = {"season_id": board.season_id, "mode": board.mode, "games": document}
    await connection.execute(_SQLITE_BUCKETS, where)
    rows = await connection.execute(_SQLITE_ENTRIES, {**where, "now": now})
    return [_standing(0, row) for row in rows]


# PostgreSQL writers run side by side, so the old scores are read under row locks. The first
# statement claims the players' entries in player-id order: a missing entry is inserted empty
# (`games` 0, which no committed entry has: every entry counts at least the game that made
# it), an existing one is locked by a no-op update that returns its score as it stands. A
# concurrent first game of the same player waits on the primary key, then finds the committed
# row and locks it, so two writers never both count a player as new, and the score read is
# the latest (ON CONFLICT DO UPDATE always acts on the newest row version).
_POSTGRES_CLAIM = text(
    """
    INSERT INTO leaderboard_entries AS e
           (season_id, mode, player_id, score, games, wins, losses, draws, updated_at)
    SELECT :season_id, :mode, g.player_id, g.score, 0, 0, 0, 0, :now
      FROM unnest(CAST(:players AS integer[]), CAST(:scores AS integer[]))
           AS g(player_id, score)
     ORDER BY g.player_id
    ON CONFLICT (season_id, mode, player_id) DO UPDATE SET score = e.score
    RETURNING e.player_id, e.score, e.games
    """
).bindparams(bindparam("now", type_=UTCDateTime()))
# The second moves the bucket counts (in score order, so concurrent results lock shared
# buckets in the same order) and counts the games into the locked entries, in one statement.
_POSTGRES_WRITE = text(
    """
    WITH buckets AS (
        INSERT INTO leaderboard_score_counts AS c (season_id, mode, score, players)
        SELECT :season_id, :mode, d.score, d.players
          FROM unnest(CAST(:bucket_scores AS integer[]), CAST(:bucket_moves AS integer[]))
               AS d(score, players)
         ORDER BY d.score
        ON CONFLICT (season_id, mode, score) DO UPDATE SET players = c.players + excluded.players
    )
    UPDATE leaderboard_entries AS e
       SET score = g.score, games = e.games + 1, wins = e.wins + g.wins,
           losses = e.losses + g.losses, draws = e.draws + g.draws, updated_at = :now
      FROM unnest(CAST(:players AS integer[]), CAST(:scores AS integer[]),
                  CAST(:wins AS integer[]), CAST(:losses AS integer[]),
                  CAST(:draws AS integer[])) AS g(player_id, score, wins, losses, draws)
     WHERE e.season_id = :season_id AND e.mode = :mode AND e.player_id = g.player_id
    RETURNING e.player_id, (SELECT p.handle FROM players AS p WHERE p.id = e.player_id),
              e.score, e.games, e.wins, e.losses, e.draws
    """
).bindparams(bindparam("now", type_=UTCDateTime()))


async def _record_postgres(
    connection: AsyncConnection, board: Board, games: Sequence[GameCount], *, now: datetime
) -> list[Standing]:
    players = [game.player_id for game in games]
    scores = [game.score for game in games]
    where = {"season_id": board.season_id, "mode": board.mode, "players": players}
    claimed = await connection.execute(_POSTGRES_CLAIM, {**where, "scores": scores, "now": now})
    old = {player_id: (score if counted else None) for player_id, score, counted in claimed}
    moves: dict[int, int] = {}
    for game in games:
        before = old[game.player_id]
        if before != game.score:
            moves[game.score] = moves.get(game.score, 0) + 1
            if before is not None:
                moves[before] = moves.get(before, 0) - 1
    buckets = sorted((score, n) for score, n in moves.items() if n)
    rows = await connection.execute(
        _POSTGRES_WRITE,
        {
            **where,
            "scores": scores,
            "wins": [int(game.outcome == "win") for game in games],
            "losses": [int(game.outcome == "loss") for game in games],
            "draws": [int(game.outcome == "draw") for game in games],
            "bucket_scores": [score for score, _ in buckets],
            "bucket_moves": [n for _, n in buckets],
            "now": now,
        },
    )
    return [_standing(0, row) for row in rows]
