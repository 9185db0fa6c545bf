"""Competition tables: ratings and their history, seasons, leaderboard entries, queue tickets.

They live beside `models.py` on the same `Base` (one metadata for Alembic's drift check) but in
their own module: the competitive layer has its own migration (0003). Match ids are stored as
plain strings with no foreign key: the `matches` table is on another migration branch, and the
exactly-once guards need only uniqueness, not referential checks.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from VEZEPyCore.db.types import UTCDateTime
from VEZEPyGame.db.models import Base

#: uuid4().hex, the id format of matches and queue tickets.
ID_LENGTH = 32
MODE_LENGTH = 16
REGION_LENGTH = 16

TICKET_WAITING = "waiting"
TICKET_MATCHED = "matched"
TICKET_CANCELLED = "cancelled"


class Rating(Base):
    """A player's current skill estimate in one mode (openskill's mu and sigma)."""

    __tablename__ = "ratings"

    player_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("players.id", ondelete="CASCADE"), primary_key=True
    )
    mode: Mapped[str] = mapped_column(String(MODE_LENGTH), primary_key=True)
    mu: Mapped[float] = mapped_column(Float)
    sigma: Mapped[float] = mapped_column(Float)
    games: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    wins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    losses: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    draws: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RatingChange(Base):
    """One match's effect on one player's rating. The unique (match_id, player_id) pair is what
    makes a result count exactly once, however often or concurrently it is reported."""

    __tablename__ = "rating_history"
    __table_args__ = (
        UniqueConstraint("match_id", "player_id", name="uq_rating_history_match_player"),
        Index("ix_rating_history_player_mode", "player_id", "mode", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    match_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    player_id: Mapped[int] = mapped_column(Integer, ForeignKey("players.id", ondelete="CASCADE"))
    opponent_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("players.id", ondelete="SET NULL"), nullable=True
    )
    mode: Mapped[str] = mapped_column(String(MODE_LENGTH))
    season_id: Mapped[int] = mapped_column(Integer, ForeignKey("seasons.id"))
    #: "win", "loss" or "draw", from this player's side.
    outcome: Mapped[str] = mapped_column(String(8))
    mu_before: Mapped[float] = mapped_column(Float)
    sigma_before: Mapped[float] = mapped_column(Float)
    mu_after: Mapped[float] = mapped_column(Float)
    sigma_after: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Season(Base):
    """A leaderboard period. The current season is the latest whose window holds now."""

    __tablename__ = "seasons"
    __table_args__ = (UniqueConstraint("number", name="uq_seasons_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: 1, 2, 3...; unique, so two workers rolling over at once make one next season.
    number: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LeaderboardEntry(Base):
    """A player's standing in one season and mode: SQL is the record, Redis a copy."""

    __tablename__ = "leaderboard_entries"
    __table_args__ = (
        # Serves top-N, around-me and rank (a count of better entries) from the index alone.
        Index("ix_leaderboard_entries_board_score", "season_id", "mode", "score", "player_id"),
    )

    season_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("seasons.id", ondelete="CASCADE"), primary_key=True
    )
    mode: Mapped[str] = mapped_column(String(MODE_LENGTH), primary_key=True)
    player_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("players.id", ondelete="CASCADE"), primary_key=True
    )
    score: Mapped[int] = mapped_column(Integer)
    #: Grows by one per counted match: the version that keeps the Redis copy from going back.
    games: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    wins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    losses: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    draws: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LeaderboardScoreCount(Base):
    """How many entries of a board hold each score: a rank is the players in the buckets above
    plus the few sharing one's score, so it costs a short range read, not a count of the board.
    Kept in the same transaction as the entries it counts."""

    __tablename__ = "leaderboard_score_counts"

    season_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("seasons.id", ondelete="CASCADE"), primary_key=True
    )
    mode: Mapped[str] = mapped_column(String(MODE_LENGTH), primary_key=True)
    score: Mapped[int] = mapped_column(Integer, primary_key=True)
    players: Mapped[int] = mapped_column(Integer)


class QueueTicket(Base):
    """A player waiting for a match in one mode and region."""

    __tablename__ = "queue_tickets"
    __table_args__ = (
        # No double queueing: at most one waiting ticket per player, enforced by the database.
        Index(
            "uq_queue_tickets_waiting_player",
            "player_id",
            unique=True,
            sqlite_where=text("status = 'waiting'"),
            postgresql_where=text("status = 'waiting'"),
        ),
        Index("ix_queue_tickets_status_created", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    player_id: Mapped[int] = mapped_column(Integer, ForeignKey("players.id", ondelete="CASCADE"))
    mode: Mapped[str] = mapped_column(String(MODE_LENGTH))
    region: Mapped[str] = mapped_column(String(REGION_LENGTH))
    #: The player's rating when queueing: pairing compares these.
    rating: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default=TICKET_WAITING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    matched_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    match_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)
    opponent_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    bot_level: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: The player agreed, when queueing, to an unrated game against the bot if nobody fits in
    #: time. Without it a ticket waits for a person (a ranked ticket is never played by a bot
    #: behind the player's back).
    bot_fill: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
