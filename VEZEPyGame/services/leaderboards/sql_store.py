"""The leaderboard record in SQL, read with compiled Core statements (no ORM per row).

Every read walks the `(season_id, mode, score, player_id)` index: top-N backwards from the
best, a rank as a count of the entries ordered before one, around-me as two short walks.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from VEZEPyGame.db.competition import LeaderboardEntry
from VEZEPyGame.db.models import Player
from VEZEPyGame.services.leaderboards.standings import Board, Neighbourhood, Outcome, Standing

E = LeaderboardEntry
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
    row = (
        await connection.execute(_entries().where(_on_board(board), E.player_id == player_id))
    ).first()
    if row is None:
        return None
    ahead = await connection.scalar(
        select(func.count())
        .select_from(E)
        .where(_on_board(board), tuple_(E.score, E.player_id) > tuple_(row[2], player_id))
    )
    return _standing(int(ahead or 0) + 1, row)


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


async def record_outcome(
    connection: AsyncConnection,
    board: Board,
    *,
    player_id: int,
    score: int,
    outcome: Outcome,
    now: datetime,
) -> None:
    """Upsert one counted game into the player's entry, atomically (ON CONFLICT DO UPDATE)."""
    values = {
        "season_id": board.season_id,
        "mode": board.mode,
        "player_id": player_id,
        "score": score,
        "games": 1,
        "wins": int(outcome == "win"),
        "losses": int(outcome == "loss"),
        "draws": int(outcome == "draw"),
        "updated_at": now,
    }
    insert = (
        postgresql.insert(E) if connection.dialect.name == "postgresql" else sqlite.insert(E)
    ).values(values)
    excluded = insert.excluded
    await connection.execute(
        insert.on_conflict_do_update(
            index_elements=[E.season_id, E.mode, E.player_id],
            set_={
                "score": excluded.score,
                "games": E.games + 1,
                "wins": E.wins + excluded.wins,
                "losses": E.losses + excluded.losses,
                "draws": E.draws + excluded.draws,
                "updated_at": excluded.updated_at,
            },
        )
    )
