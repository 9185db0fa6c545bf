"""Dependency aliases: the shared ones from VEZEPyCore plus this service's own."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from VEZEPyCore.web.deps import RegistryDep, SessionDep
from VEZEPyGame.app.settings import GameSettings
from VEZEPyGame.services.email.client import EmailClient

__all__ = ["EmailClientDep", "RegistryDep", "SessionDep", "SettingsDep"]


async def _settings(request: Request) -> GameSettings:
    settings: GameSettings = request.app.state.settings
    return settings


async def _email_client(request: Request) -> EmailClient:
    client: EmailClient = request.app.state.email_client
    return client


SettingsDep = Annotated[GameSettings, Depends(_settings)]
EmailClientDep = Annotated[EmailClient, Depends(_email_client)]
