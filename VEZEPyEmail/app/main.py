"""VEZEPyEmail: the mail service's FastAPI application."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from VEZEPyCore.web.app import create_service_app
from VEZEPyCore.web.sso import SsoConfig, install_sso
from VEZEPyEmail.app.routers import events, mailboxes, messages, ui
from VEZEPyEmail.app.settings import EmailSettings

PACKAGE_DIR = Path(__file__).resolve().parents[1]
MIGRATIONS = PACKAGE_DIR / "db" / "alembic"  # the layout create_service_app expects
#: Webmail's client at the portal (config/oauth_clients.json): signs people in to their inbox.
WEBMAIL_SSO = SsoConfig(
    client_id="veze-webmail",
    scopes=("openid", "profile", "email", "email.read", "email.send"),
    home_path="/ui/inbox",
)


def create_app(settings: EmailSettings | None = None) -> FastAPI:
    settings = settings or EmailSettings()
    app = create_service_app(
        name="email",
        title="VEZE Email",
        settings=settings,
        audience=settings.email_aud,
        db_url=settings.db_url,
        package_dir=PACKAGE_DIR,
        routers=[messages.router, mailboxes.router, events.router, ui.router],
    )
    install_sso(app, WEBMAIL_SSO)
    return app


app = create_app()
