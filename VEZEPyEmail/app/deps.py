"""Dependency aliases so route signatures read like sentences."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from VEZEPyCore.events.bus import EventBus
from VEZEPyEmail.app.settings import EmailSettings


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; routes commit, anything uncommitted is rolled back on close."""
    async with request.app.state.sessionmaker() as session:
        yield session


async def _connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """A plain Core connection for hot reads (no ORM objects built per row)."""
    async with request.app.state.engine.connect() as connection:
        yield connection


def _settings(request: Request) -> EmailSettings:
    settings: EmailSettings = request.app.state.settings
    return settings


def _bus(request: Request) -> EventBus:
    bus: EventBus = request.app.state.bus
    return bus


SessionDep = Annotated[AsyncSession, Depends(_session)]
ConnectionDep = Annotated[AsyncConnection, Depends(_connection)]
SettingsDep = Annotated[EmailSettings, Depends(_settings)]
BusDep = Annotated[EventBus, Depends(_bus)]
