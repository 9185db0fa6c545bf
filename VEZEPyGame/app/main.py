"""VEZEPyGame: the game service's FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from VEZEPyCore.web.app import create_service_app
from VEZEPyGame.app.routers import mail, ui
from VEZEPyGame.app.settings import GameSettings
from VEZEPyGame.services.email.client import EmailClient

PACKAGE_DIR = Path(__file__).resolve().parents[1]
MIGRATIONS = PACKAGE_DIR / "db" / "alembic"  # the layout create_service_app expects


def create_app(settings: GameSettings | None = None) -> FastAPI:
    settings = settings or GameSettings()

    @asynccontextmanager
    async def start_email_client(app: FastAPI) -> AsyncIterator[None]:
        app.state.email_client = EmailClient(
            app.state.clients, deadline_seconds=settings.http_timeout_seconds
        )
        yield

    return create_service_app(
        name="game",
        title="VEZE Game",
        settings=settings,
        audience=settings.game_aud,
        db_url=settings.db_url,
        package_dir=PACKAGE_DIR,
        routers=[mail.router, ui.router],
        on_startup=start_email_client,
    )


app = create_app()
