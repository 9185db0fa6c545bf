"""VEZEPyEmail: the mail service's FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from VEZEPyCore import __version__
from VEZEPyCore.web.app import build_service_app
from VEZEPyCore.web.runtime import service_runtime
from VEZEPyCore.web.templates import service_templates
from VEZEPyEmail.app.routers import events, mailboxes, messages, ui
from VEZEPyEmail.app.settings import EmailSettings

PACKAGE_DIR = Path(__file__).resolve().parents[1]
MIGRATIONS = PACKAGE_DIR / "db" / "alembic"


def create_app(settings: EmailSettings | None = None) -> FastAPI:
    settings = settings or EmailSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service_runtime(
            app,
            settings=settings,
            audience=settings.email_aud,
            db_url=settings.db_url,
            migrations=MIGRATIONS,
        ):
            yield

    app = build_service_app(
        name="email",
        title="VEZE Email",
        version=__version__,
        settings=settings,
        lifespan=lifespan,
        static_dir=PACKAGE_DIR / "ui" / "static",
    )
    app.state.templates = service_templates(PACKAGE_DIR / "ui" / "templates")
    app.include_router(messages.router)
    app.include_router(mailboxes.router)
    app.include_router(events.router)
    app.include_router(ui.router)
    return app


app = create_app()
