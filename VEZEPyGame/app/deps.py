"""Dependency aliases so route signatures read like sentences."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyCore.services.registry import ServiceRegistry
from VEZEPyGame.app.settings import GameSettings
from VEZEPyGame.services.email.client import EmailClient
from VEZEPyGame.services.registry import registry_of


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; routes commit, anything uncommitted is rolled back on close."""
    async with request.app.state.sessionmaker() as session:
        yield session


def _settings(request: Request) -> GameSettings:
    settings: GameSettings = request.app.state.settings
    return settings


def _email_client(request: Request) -> EmailClient:
    client: EmailClient = request.app.state.email_client
    return client


SessionDep = Annotated[AsyncSession, Depends(_session)]
SettingsDep = Annotated[GameSettings, Depends(_settings)]
RegistryDep = Annotated[ServiceRegistry, Depends(registry_of)]
EmailClientDep = Annotated[EmailClient, Depends(_email_client)]
