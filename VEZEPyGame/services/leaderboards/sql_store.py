"""The leaderboard record in SQL, read with compiled Core statements (no ORM per row).

Every read walks an index: top-N the `(season_id, mode, score, player_id)` index backwards from
the best; a rank sums the score buckets above (`leaderboard_score_counts`, one row per distinct
score) and counts the few entries tied with it; around-me is that rank and two short walks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, text, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from VEZEPyGame.db.competition import LeaderboardEntry, LeaderboardScoreCount
from VEZEPyGame.db.models import Player
from VEZEPyGame.services.leaderboards.standings import Board, Neighbourhood, Outcome, Standing

E = LeaderboardEntry
C = LeaderboardScoreCount
#: A write that changes nothing, so SQLite's transaction takes the write lock up front.
WRITE_LOCK = "UPDATE alembic_version SET version_num = version_num WHERE 1 = 0"
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
    transaction; the players' entries as they now stand (rank 0: not computed), for the Redis
    copy after the commit. Entries are written in player-id order and bucket changes in score
    order, so concurrent writers always lock rows in the same order and never deadlock."""
    if connection.dialect.name == "sqlite":
        # Take SQLite's write lock before reading the old scores (see begin_as_writer).
        await connection.execute(text(WRITE_LOCK))
    deltas: dict[int, int] = {}
    for game in sorted(games, key=lambda g: g.player_id):
        old = await _lock_entry(connection, board, game, now=now)
        await connection.execute(
            update(E)
            .where(_on_board(board), E.player_id == game.player_id)
            .values(
                score=game.score,
                games=E.games + 1,
                wins=E.wins + int(game.outcome == "win"),
                losses=E.losses + int(game.outcome == "loss"),
                draws=E.draws + int(game.outcome == "draw"),
                updated_at=now,
            )
        )
        if old != game.score:
            deltas[game.score] = deltas.get(game.score, 0) + 1
            if old is not None:
                deltas[old] = deltas.get(old, 0) - 1
    await _add_to_buckets(connection, board, deltas)
    return await rows_for(connection, board, [game.player_id for game in games])


def _insert(connection: AsyncConnection, table: Any) -> Any:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


async def _lock_entry(
    connection: AsyncConnection, board: Board, game: GameCount, *, now: datetime
) -> int | None:
    """The entry's score before this game (None: it is new), with the row locked.

    A new entry is inserted empty first: a concurrent first game of the same player waits on
    the primary key until this transaction ends, then finds the row and locks it, so the two
    never both count the player as new."""
    created = await connection.scalar(
        _insert(connection, E)
        .values(
            season_id=board.season_id,
            mode=board.mode,
            player_id=game.player_id,
            score=game.score,
            games=0,
            wins=0,
            losses=0,
            draws=0,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=[E.season_id, E.mode, E.player_id])
        .returning(E.player_id)
    )
    if created is not None:
        return None
    old: int = (
        await connection.execute(
            select(E.score).where(_on_board(board), E.player_id == game.player_id).with_for_update()
        )
    ).scalar_one()
    return old


async def _add_to_buckets(
    connection: AsyncConnection, board: Board, deltas: dict[int, int]
) -> None:
    """All of a result's bucket changes in one upsert; rows in score order, so concurrent
    results lock shared buckets in the same order."""
    rows = [
        {"season_id": board.season_id, "mode": board.mode, "score": score, "players": delta}
        for score, delta in sorted(deltas.items())
        if delta
    ]
    if not rows:
        return
    insert = _insert(connection, C).values(rows)
    await connection.execute(
        insert.on_conflict_do_update(
            index_elements=[C.season_id, C.mode, C.score],
            set_={"players": C.players + insert.excluded.players},
        )
    )
