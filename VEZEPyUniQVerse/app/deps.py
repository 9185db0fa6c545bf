"""Dependency aliases: the shared ones from VEZEPyCore plus this service's settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from VEZEPyCore.web.deps import ClientsDep, RegistryDep, SessionmakerDep, TemplatesDep
from VEZEPyUniQVerse.app.settings import PortalSettings

__all__ = ["ClientsDep", "RegistryDep", "SessionmakerDep", "SettingsDep", "TemplatesDep"]


async def _settings(request: Request) -> PortalSettings:
    settings: PortalSettings = request.app.state.settings
    return settings


SettingsDep = Annotated[PortalSettings, Depends(_settings)]
