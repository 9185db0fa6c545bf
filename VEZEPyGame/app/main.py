"""VEZEPyGame: the game service's FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from VEZEPyCore.web.app import create_service_app
from VEZEPyCore.web.sso import SsoConfig, install_sso
from VEZEPyGame.app.routers import (
    admin,
    leaderboards,
    mail,
    notifications,
    players,
    queue,
    ratings,
    store,
    telemetry,
    ui,
)
from VEZEPyGame.app.routers.matches import install_matches
from VEZEPyGame.app.settings import GameSettings
from VEZEPyGame.services.email.client import EmailClient
from VEZEPyGame.services.matchmaking.runtime import install_competition
from VEZEPyGame.services.metrics import install_game_metrics
from VEZEPyGame.services.notifications.worker import summary_mail
from VEZEPyGame.services.store.startup import start_store
from VEZEPyGame.services.telemetry.startup import start_telemetry

PACKAGE_DIR = Path(__file__).resolve().parents[1]
MIGRATIONS = PACKAGE_DIR / "db" / "alembic"  # the layout create_service_app expects
#: The game pages' client at the portal (config/oauth_clients.json). The home page also serves
#: visitors, so it asks the portal silently whether the visitor is already signed in there.
GAME_UI_SSO = SsoConfig(
    client_id="veze-game-ui",
    # game.admin reaches only accounts with the portal's admin role (the portal narrows the
    # grant by role): it opens the fair-play flags page to them.
    scopes=(
        "openid",
        "profile",
        "email",
        "game.play",
        "game.read_mail",
        "email.read",
        "game.admin",
    ),
    home_path="/ui",
    silent_sign_in=True,
)


def create_app(settings: GameSettings | None = None) -> FastAPI:
    settings = settings or GameSettings()

    @asynccontextmanager
    async def start_email_client(app: FastAPI) -> AsyncIterator[None]:
        app.state.email_client = EmailClient(
            app.state.clients, deadline_seconds=settings.http_timeout_seconds
        )
        yield

    @asynccontextmanager
    async def start_game(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for hook in (start_email_client, start_store, start_telemetry, summary_mail):
                await stack.enter_async_context(hook(app))
            yield

    app = create_service_app(
        name="game",
        title="VEZE Game",
        settings=settings,
        audience=settings.game_aud,
        db_url=settings.db_url,
        package_dir=PACKAGE_DIR,
        routers=[
            mail.router,
            players.router,
            ui.router,
            store.router,
            telemetry.router,
            admin.router,
            notifications.router,
        ],
        on_startup=start_game,
    )
    install_matches(app)  # before anything that registers match hooks
    install_game_metrics(app)  # before the matchmaker, which reports waits to it
    install_sso(app, GAME_UI_SSO)
    install_competition(app, settings, routers=[queue.router, ratings.router, leaderboards.router])
    return app


app = create_app()
