from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Portal tables. The schema itself comes only from the Alembic migrations."""
