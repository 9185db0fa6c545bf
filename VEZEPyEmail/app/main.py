"""VEZEPyEmail: the mail service's FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from VEZEPyCore.web.app import StartupHook, create_service_app
from VEZEPyCore.web.sso import SsoConfig, install_sso
from VEZEPyEmail.app.routers import (
    admin,
    compose,
    contacts,
    events,
    folders,
    internal_delivery,
    mailboxes,
    message_detail,
    messages,
    rules,
    threads,
    ui,
    uploads,
    webmail,
)
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.services.compose.errors import install_compose_errors
from VEZEPyEmail.services.compose.runtime import compose_runtime
from VEZEPyEmail.services.messages.fast_list import fast_message_list
from VEZEPyEmail.services.metrics import install_email_metrics
from VEZEPyEmail.services.outbound.worker import outbound_worker
from VEZEPyEmail.services.smtp.server import smtp_listeners
from VEZEPyEmail.services.store.blobs import BlobStore

PACKAGE_DIR = Path(__file__).resolve().parents[1]
MIGRATIONS = PACKAGE_DIR / "db" / "alembic"  # the layout create_service_app expects
#: Webmail's client at the portal (config/oauth_clients.json): signs people in to their inbox.
WEBMAIL_SSO = SsoConfig(
    client_id="veze-webmail",
    scopes=("openid", "profile", "email", "email.read", "email.send"),
    home_path="/ui/inbox",
)


def _compose(hooks: list[StartupHook]) -> StartupHook:
    """Run start-up hooks in order (and their clean-up in reverse)."""

    @asynccontextmanager
    async def run_all(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for hook in hooks:
                await stack.enter_async_context(hook(app))
            yield

    return run_all


def create_app(settings: EmailSettings | None = None) -> FastAPI:
    settings = settings or EmailSettings()

    @asynccontextmanager
    async def start_mail_store(app: FastAPI) -> AsyncIterator[None]:
        # Raw messages, fsynced before the SMTP 250 (services/store/blobs.py).
        app.state.blobs = BlobStore(settings.resolved_mail_dir)
        yield

    # The SMTP listeners come after the store they deliver into (off unless smtp_enabled) and
    # after the outbound worker they queue remote mail for.
    startup_hooks: list[StartupHook] = [
        start_mail_store,
        fast_message_list,
        compose_runtime,
        outbound_worker,
        smtp_listeners,
    ]
    app = create_service_app(
        name="email",
        title="VEZE Email",
        settings=settings,
        audience=settings.email_aud,
        db_url=settings.db_url,
        package_dir=PACKAGE_DIR,
        routers=[
            messages.router,
            message_detail.router,
            folders.router,
            mailboxes.router,
            events.router,
            ui.router,
            webmail.router,
            compose.router,
            uploads.router,
            contacts.router,
            rules.router,
            threads.router,
            admin.router,
            internal_delivery.router,
        ],
        on_startup=_compose(startup_hooks),
    )
    install_sso(app, WEBMAIL_SSO)
    install_compose_errors(app)
    install_email_metrics(app)
    return app


app = create_app()
