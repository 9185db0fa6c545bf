"""VEZEPyGame: the game service's FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from VEZEPyCore import __version__
from VEZEPyCore.web.app import build_service_app
from VEZEPyCore.web.runtime import service_runtime
from VEZEPyCore.web.templates import service_templates
from VEZEPyGame.app.routers import mail, ui
from VEZEPyGame.app.settings import GameSettings
from VEZEPyGame.services.email.client import EmailClient

PACKAGE_DIR = Path(__file__).resolve().parents[1]
MIGRATIONS = PACKAGE_DIR / "db" / "alembic"


def create_app(settings: GameSettings | None = None) -> FastAPI:
    settings = settings or GameSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service_runtime(
            app,
            settings=settings,
            audience=settings.game_aud,
            db_url=settings.db_url,
            migrations=MIGRATIONS,
        ):
            app.state.email_client = EmailClient(
                app.state.clients, deadline_seconds=settings.http_timeout_seconds
            )
            yield

    app = build_service_app(
        name="game",
        title="VEZE Game",
        version=__version__,
        settings=settings,
        lifespan=lifespan,
        static_dir=PACKAGE_DIR / "ui" / "static",
    )
    app.state.templates = service_templates(PACKAGE_DIR / "ui" / "templates")
    app.include_router(mail.router)
    app.include_router(ui.router)
    return app


app = create_app()
