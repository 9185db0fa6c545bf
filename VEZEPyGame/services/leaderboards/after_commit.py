"""Leaderboard rows that wait for their SQL transaction to commit before they go to Redis.

A result's entries are written inside the match result's transaction (SQL is the record), and
only a committed row may reach Redis: a copy of a row that was rolled back would carry a game
count (the copy's version) that the real row reaches later with another score, and Redis
would then refuse the real one. So the rows are staged on the session, a commit hands them to
their `Leaderboards` (keyed by match id, to push after the commit in one round trip) and the
end of a transaction that did not commit drops them. No SQL read happens after the commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from VEZEPyGame.services.leaderboards.standings import Board, Standing

STAGED_INFO_KEY = "veze_leaderboard_staged"


class Committed(Protocol):
    def committed(self, key: str, board: Board, rows: Sequence[Standing]) -> None: ...


def stage(
    session: AsyncSession, target: Committed, key: str, board: Board, rows: Sequence[Standing]
) -> None:
    """Hand `rows` to `target.committed(key, ...)` if and when this transaction commits."""
    session.info.setdefault(STAGED_INFO_KEY, []).append((target, key, board, list(rows)))


@event.listens_for(Session, "after_commit")
def _hand_over(session: Session) -> None:
    staged: list[tuple[Committed, str, Board, list[Standing]]] = session.info.pop(
        STAGED_INFO_KEY, []
    )
    for target, key, board, rows in staged:
        target.committed(key, board, rows)


@event.listens_for(Session, "after_transaction_end")
def _drop_uncommitted(session: Session, transaction: SessionTransaction) -> None:
    # Savepoints end inside the transaction; only the outermost one decides.
    if transaction.parent is None:
        session.info.pop(STAGED_INFO_KEY, None)
