"""Dependency aliases every service shares, so route signatures read like sentences.

Each reads what the service's lifespan put on `app.state`. Service-specific aliases (its
settings class, its own clients) live in the service's `app/deps.py`. They are `async def`
although they never wait: FastAPI runs a plain `def` dependency on a worker thread, a hop that
costs more than the whole of a hot read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker
from starlette.requests import HTTPConnection

from VEZEPyCore.events.bus import EventBus
from VEZEPyCore.services.http import ServiceClients
from VEZEPyCore.services.registry import ServiceRegistry


async def _session(connection: HTTPConnection) -> AsyncIterator[AsyncSession]:
    """One session per request; routes commit, anything uncommitted is rolled back on close."""
    async with connection.app.state.sessionmaker() as session:
        yield session


async def _connection(connection: HTTPConnection) -> AsyncIterator[AsyncConnection]:
    """A plain Core connection for hot reads (no ORM objects built per row)."""
    async with connection.app.state.engine.connect() as database:
        yield database


async def _sessionmaker(connection: HTTPConnection) -> async_sessionmaker[AsyncSession]:
    """The factory, not a session: flows that call other services commit step by step."""
    sessionmaker: async_sessionmaker[AsyncSession] = connection.app.state.sessionmaker
    return sessionmaker


async def _bus(connection: HTTPConnection) -> EventBus:
    bus: EventBus = connection.app.state.bus
    return bus


async def _registry(connection: HTTPConnection) -> ServiceRegistry:
    registry: ServiceRegistry = connection.app.state.registry
    return registry


async def _clients(connection: HTTPConnection) -> ServiceClients:
    clients: ServiceClients = connection.app.state.clients
    return clients


async def _templates(connection: HTTPConnection) -> Jinja2Templates:
    templates: Jinja2Templates = connection.app.state.templates
    return templates


SessionDep = Annotated[AsyncSession, Depends(_session)]
ConnectionDep = Annotated[AsyncConnection, Depends(_connection)]
SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(_sessionmaker)]
BusDep = Annotated[EventBus, Depends(_bus)]
RegistryDep = Annotated[ServiceRegistry, Depends(_registry)]
ClientsDep = Annotated[ServiceClients, Depends(_clients)]
TemplatesDep = Annotated[Jinja2Templates, Depends(_templates)]
