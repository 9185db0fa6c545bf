"""VEZEPyUniQVerse: the portal's FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from VEZEPyCore.security.ratelimit import make_rate_limiter
from VEZEPyCore.web.app import create_service_app
from VEZEPyUniQVerse.app.routers import (
    account_pages,
    accounts,
    admin,
    copilot,
    directory,
    home,
    internal_auth,
    notifications,
    oauth,
    pages,
    provisioning,
)
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.services.metrics import install_portal_metrics
from VEZEPyUniQVerse.services.notifications.hub import notification_hub
from VEZEPyUniQVerse.services.oidc.startup import start_oidc_provider
from VEZEPyUniQVerse.services.provisioning.worker import provisioning_worker

PACKAGE_DIR = Path(__file__).resolve().parents[1]
MIGRATIONS = PACKAGE_DIR / "db" / "alembic"  # the layout create_service_app expects


@asynccontextmanager
async def rate_limiter(app: FastAPI) -> AsyncIterator[None]:
    """Rate limits of log-in, sign-up and the account pages (in Redis when it is configured)."""
    limiter = make_rate_limiter(app.state.settings.redis_url)
    app.state.rate_limiter = limiter
    try:
        yield
    finally:
        await limiter.close()


#: The portal's own start-up, entered in order and left in reverse. The provisioning worker
#: comes last: its calls use what the others set up (signing keys for service tokens).
STARTUP_HOOKS = (rate_limiter, start_oidc_provider, notification_hub, provisioning_worker)


@asynccontextmanager
async def start_portal(app: FastAPI) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        for hook in STARTUP_HOOKS:
            await stack.enter_async_context(hook(app))
        yield


def create_app(settings: PortalSettings | None = None) -> FastAPI:
    settings = settings or PortalSettings()
    app = create_service_app(
        name="portal",
        title="VEZE UniQVerse Portal",
        settings=settings,
        audience=settings.portal_aud,
        db_url=settings.db_url,
        package_dir=PACKAGE_DIR,
        routers=[
            pages.router,
            home.router,
            notifications.router,
            directory.router,
            provisioning.router,
            copilot.router,
            accounts.router,
            account_pages.router,
            admin.router,
            oauth.router,
            internal_auth.router,
        ],
        on_startup=start_portal,
    )
    install_portal_metrics(app)
    return app


app = create_app()
