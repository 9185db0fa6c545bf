"""VEZEPyUniQVerse: the portal's FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from VEZEPyCore import __version__
from VEZEPyCore.web.app import build_service_app
from VEZEPyCore.web.runtime import service_runtime
from VEZEPyCore.web.templates import service_templates
from VEZEPyUniQVerse.app.routers import copilot, directory, pages, provisioning
from VEZEPyUniQVerse.app.settings import PortalSettings

PACKAGE_DIR = Path(__file__).resolve().parents[1]
MIGRATIONS = PACKAGE_DIR / "db" / "alembic"


def create_app(settings: PortalSettings | None = None) -> FastAPI:
    settings = settings or PortalSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service_runtime(
            app,
            settings=settings,
            audience=settings.portal_aud,
            db_url=settings.db_url,
            migrations=MIGRATIONS,
        ):
            yield

    app = build_service_app(
        name="portal",
        title="VEZE UniQVerse Portal",
        version=__version__,
        settings=settings,
        lifespan=lifespan,
        static_dir=PACKAGE_DIR / "ui" / "static",
    )
    app.state.templates = service_templates(PACKAGE_DIR / "ui" / "templates")
    app.include_router(pages.router)
    app.include_router(directory.router)
    app.include_router(provisioning.router)
    app.include_router(copilot.router)
    return app


app = create_app()
