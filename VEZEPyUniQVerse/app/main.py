"""VEZEPyUniQVerse: the portal's FastAPI application."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from VEZEPyCore.web.app import create_service_app
from VEZEPyUniQVerse.app.routers import copilot, directory, pages, provisioning
from VEZEPyUniQVerse.app.settings import PortalSettings

PACKAGE_DIR = Path(__file__).resolve().parents[1]
MIGRATIONS = PACKAGE_DIR / "db" / "alembic"  # the layout create_service_app expects


def create_app(settings: PortalSettings | None = None) -> FastAPI:
    settings = settings or PortalSettings()
    return create_service_app(
        name="portal",
        title="VEZE UniQVerse Portal",
        settings=settings,
        audience=settings.portal_aud,
        db_url=settings.db_url,
        package_dir=PACKAGE_DIR,
        routers=[pages.router, directory.router, provisioning.router, copilot.router],
    )


app = create_app()
