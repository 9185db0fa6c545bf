"""Match tables: one row per match (its state and clocks) and one per move (its replay).

The board is never stored: it is the replay of `match_moves`, which the rules re-validate.
`version` is SQLAlchemy's version counter: every change to a match is an
`UPDATE ... WHERE version = <read>`, so of two workers (or a move racing a flag fall) exactly
one wins and the other sees a conflict instead of overwriting it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from VEZEPyCore.db.types import UTCDateTime
from VEZEPyGame.db.models import Base

MATCH_ID_LENGTH = 32


class Match(Base):
    __tablename__ = "matches"
    __table_args__ = (
        Index("ix_matches_first_player", "first_player_id", "created_at"),
        Index("ix_matches_second_player", "second_player_id", "created_at"),
        # The clock sweeper's query: active matches whose side to move is out of time.
        Index("ix_matches_status_deadline", "status", "deadline_at"),
    )

    id: Mapped[str] = mapped_column(String(MATCH_ID_LENGTH), primary_key=True)
    #: "ranked" | "casual" | "bot"
    mode: Mapped[str] = mapped_column(String(16))
    #: NULL in a bot match where the bot plays first.
    first_player_id: Mapped[int | None] = mapped_column(ForeignKey("players.id"))
    #: NULL in a bot match where the bot plays second.
    second_player_id: Mapped[int | None] = mapped_column(ForeignKey("players.id"))
    bot_level: Mapped[int | None] = mapped_column(Integer)
    #: "active" | "finished"
    status: Mapped[str] = mapped_column(String(16), default="active")
    winner_player_id: Mapped[int | None] = mapped_column(ForeignKey("players.id"))
    #: "first" | "second" | "draw" once finished
    result: Mapped[str | None] = mapped_column(String(8))
    #: "four_in_a_row" | "resign" | "timeout" | "draw"
    end_reason: Mapped[str | None] = mapped_column(String(32))
    move_count: Mapped[int] = mapped_column(Integer, default=0)
    clock_initial_ms: Mapped[int] = mapped_column(Integer)
    clock_increment_ms: Mapped[int] = mapped_column(Integer)
    #: Each side's time left when its clock last stopped (the running side's is as of
    #: `turn_started_at`).
    first_clock_ms: Mapped[int] = mapped_column(Integer)
    second_clock_ms: Mapped[int] = mapped_column(Integer)
    turn_started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: When the side to move runs out of time; NULL once finished.
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: The side (0 first, 1 second) whose draw offer stands; cleared by any move or answer.
    draw_offer_side: Mapped[int | None] = mapped_column(Integer)
    #: `move_count` when each side last offered a draw that did not end the match: the draw
    #: offer cooldown counts that side's moves since (`services/matches/draws.py`).
    first_draw_offer_ply: Mapped[int | None] = mapped_column(Integer)
    second_draw_offer_ply: Mapped[int | None] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __mapper_args__ = {"version_id_col": version}


class MatchMove(Base):
    __tablename__ = "match_moves"

    match_id: Mapped[str] = mapped_column(
        ForeignKey("matches.id", ondelete="CASCADE"), primary_key=True
    )
    #: 0-based; the primary key allows one move per ply, whatever races.
    ply: Mapped[int] = mapped_column(Integer, primary_key=True)
    column: Mapped[int] = mapped_column(Integer)
    #: NULL for the bot's moves.
    player_id: Mapped[int | None] = mapped_column(ForeignKey("players.id"))
    #: The mover's time left after the move, increment included (for the replay's clocks).
    clock_ms: Mapped[int] = mapped_column(Integer)
    played_at: Mapped[datetime] = mapped_column(UTCDateTime())
