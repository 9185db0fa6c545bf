"""Dependency aliases so route signatures read like sentences."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyCore.services.http import ServiceClients
from VEZEPyCore.services.registry import ServiceRegistry
from VEZEPyUniQVerse.app.settings import PortalSettings


def _sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    """The factory, not a session: flows that call other services commit step by step."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    return sessionmaker


def _settings(request: Request) -> PortalSettings:
    settings: PortalSettings = request.app.state.settings
    return settings


def _registry(request: Request) -> ServiceRegistry:
    registry: ServiceRegistry = request.app.state.registry
    return registry


def _clients(request: Request) -> ServiceClients:
    clients: ServiceClients = request.app.state.clients
    return clients


def _templates(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.app.state.templates
    return templates


SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(_sessionmaker)]
SettingsDep = Annotated[PortalSettings, Depends(_settings)]
RegistryDep = Annotated[ServiceRegistry, Depends(_registry)]
ClientsDep = Annotated[ServiceClients, Depends(_clients)]
TemplatesDep = Annotated[Jinja2Templates, Depends(_templates)]
