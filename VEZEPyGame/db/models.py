"""Game tables (SQLAlchemy 2.0). The schema itself comes only from the Alembic migrations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from VEZEPyCore.db.types import UTCDateTime

#: Matches the design's mail local part: a handle is also `<handle>@vezeuniqverse.com`.
HANDLE_MAX_LENGTH = 64
DEFAULT_REGION = "eu"
#: `#rrggbb`; the brand accent until the player picks one.
DEFAULT_AVATAR_COLOUR = "#4b5bdc"


class Base(DeclarativeBase):
    pass


class Player(Base):
    __tablename__ = "players"
    # Named so later SQLite batch migrations can find and alter it.
    __table_args__ = (UniqueConstraint("handle", name="uq_players_handle"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    handle: Mapped[str] = mapped_column(String(HANDLE_MAX_LENGTH))
    display_name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    region: Mapped[str] = mapped_column(
        String(16), default=DEFAULT_REGION, server_default=DEFAULT_REGION
    )
    avatar_colour: Mapped[str] = mapped_column(
        String(7), default=DEFAULT_AVATAR_COLOUR, server_default=DEFAULT_AVATAR_COLOUR
    )
    # Opt-in means off until the player says yes (match summaries by mail).
    mail_opt_in: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
