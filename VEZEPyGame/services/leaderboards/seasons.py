"""Seasons: the current one, rolled over by itself when it ends or by an admin on demand.

Season numbers are unique, so when two workers notice the end at once (or two admins press
the button), exactly one next season is made and the other caller reads it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyCore.errors import Conflict
from VEZEPyGame.db.competition import Season


async def latest_season(session: AsyncSession) -> Season | None:
    return await session.scalar(select(Season).order_by(Season.number.desc()).limit(1))


async def get_season(session: AsyncSession, *, number: int) -> Season | None:
    return await session.scalar(select(Season).where(Season.number == number))


async def current_season(session: AsyncSession, *, now: datetime, length_days: int) -> Season:
    """The season running now, starting the next one if the last has ended (caller commits)."""
    latest = await latest_season(session)
    if latest is not None and latest.ends_at > now:
        return latest
    number = 1 if latest is None else latest.number + 1
    created = await _insert_season(session, number=number, now=now, length_days=length_days)
    if created is not None:
        return created
    raced = await get_season(session, number=number)
    assert raced is not None  # the unique number only fails when that season exists
    return raced


async def start_new_season(
    session: AsyncSession, *, now: datetime, length_days: int, name: str | None = None
) -> Season:
    """End the current season now and start the next (the admin's reset; caller commits)."""
    latest = await latest_season(session)
    number = 1 if latest is None else latest.number + 1
    if latest is not None and latest.ends_at > now:
        latest.ends_at = now
    created = await _insert_season(
        session, number=number, now=now, length_days=length_days, name=name
    )
    if created is None:
        raise Conflict("another new season was started at the same moment")
    return created


async def _insert_season(
    session: AsyncSession,
    *,
    number: int,
    now: datetime,
    length_days: int,
    name: str | None = None,
) -> Season | None:
    season = Season(
        number=number,
        name=name or f"Season {number}",
        starts_at=now,
        ends_at=now + timedelta(days=length_days),
    )
    try:
        async with session.begin_nested():
            session.add(season)
            await session.flush()
    except IntegrityError:
        return None
    return season
