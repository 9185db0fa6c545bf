"""What every service's lifespan sets up: database, bus, verifier, service clients.

Everything lives on `app.state` and is closed when the lifespan ends; nothing is module-global.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from VEZEPyCore.auth.factory import build_verifier
from VEZEPyCore.db.engine import SessionLimits, make_engine, make_sessionmaker
from VEZEPyCore.db.migrations import upgrade_to_head
from VEZEPyCore.events.factory import make_bus
from VEZEPyCore.observability.db_tracing import instrument_engine
from VEZEPyCore.observability.tracing import instrument_httpx_client
from VEZEPyCore.services.http import ServiceClients, default_timeout
from VEZEPyCore.services.registry import ServiceRegistry
from VEZEPyCore.settings import CoreSettings
from VEZEPyCore.web.gc_tuning import tune_collector
from VEZEPyCore.web.workers import check_workers


@asynccontextmanager
async def service_runtime(
    app: FastAPI,
    *,
    settings: CoreSettings,
    audience: str,
    db_url: str,
    migrations: Path,
) -> AsyncIterator[None]:
    check_workers(settings)  # several workers need Redis: refuse clearly, before any work
    # First: it creates the SQLite file's folder.
    engine = make_engine(db_url, limits=SessionLimits.of(settings))
    instrument_engine(engine, app.state.tracer_provider)
    await upgrade_to_head(migrations, db_url)
    bus = make_bus(settings)
    http_client = httpx.AsyncClient(timeout=default_timeout(settings))
    instrument_httpx_client(http_client, app.state.tracer_provider)
    registry = ServiceRegistry.load(settings)
    clients = ServiceClients(settings, registry, tracer_provider=app.state.tracer_provider)

    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.bus = bus
    app.state.http_client = http_client
    app.state.registry = registry
    app.state.clients = clients
    app.state.verifier = build_verifier(settings, audience=audience, http_client=http_client)

    async def check_database() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    app.state.ready_checks["database"] = check_database
    if settings.redis_url:
        app.state.ready_checks["redis"] = bus.ping
    tune_collector(settings)  # start-up's objects are permanent: collections stay cheap
    try:
        yield
    finally:
        await clients.aclose()
        await http_client.aclose()
        await bus.close()
        await engine.dispose()
