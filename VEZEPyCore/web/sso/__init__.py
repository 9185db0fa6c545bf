"""Single sign-on for server-rendered pages: an OpenID Connect relying party of the portal.

`install_sso(app, SsoConfig(...))` adds `/auth/login`, `/auth/callback`, `/auth/logout` and
`/auth/frontchannel-logout`, a signed HttpOnly session cookie per service, silent refresh,
and lets the service's API accept that cookie (with CSRF) where it accepts a bearer. Pages
depend on `PageUser` (sign-in required) or `OptionalPageUser`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from VEZEPyCore.settings import CoreSettings
from VEZEPyCore.web.sso.config import SsoConfig, safe_next
from VEZEPyCore.web.sso.cookies import SsoSession, session_cookie_name
from VEZEPyCore.web.sso.deps import (
    OptionalPageUser,
    PageUser,
    SignInRequired,
    redirect_to_sign_in,
)
from VEZEPyCore.web.sso.middleware import SsoCookieMiddleware
from VEZEPyCore.web.sso.refresh import SharedRefresh
from VEZEPyCore.web.sso.relying_party import RelyingParty
from VEZEPyCore.web.sso.routes import router
from VEZEPyCore.web.templates import CORE_TEMPLATES

__all__ = [
    "OptionalPageUser",
    "PageUser",
    "RelyingParty",
    "SignInRequired",
    "SsoConfig",
    "SsoSession",
    "install_sso",
    "safe_next",
    "session_cookie_name",
]

SSO_TEMPLATES = Path(__file__).resolve().parent / "templates"


def install_sso(app: FastAPI, config: SsoConfig) -> RelyingParty:
    """Make `app` (built by `create_service_app`) a relying party of the portal."""
    environment = Environment(
        loader=ChoiceLoader([FileSystemLoader(SSO_TEMPLATES), FileSystemLoader(CORE_TEMPLATES)]),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    rp = RelyingParty(
        service=app.state.service_name,
        config=config,
        templates=Jinja2Templates(env=environment),
    )
    app.state.sso = rp
    # Read by VEZEPyCore.auth.deps.authenticate: API calls without a bearer may use the cookie.
    app.state.session_authenticator = rp
    app.include_router(router)
    app.add_exception_handler(SignInRequired, redirect_to_sign_in)
    app.add_middleware(SsoCookieMiddleware)
    _share_refreshes(app, rp)
    return rp


def _share_refreshes(app: FastAPI, rp: RelyingParty) -> None:
    """With Redis, refreshes are single-flight across workers for the app's lifespan."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with inner(app) as state:
            settings: CoreSettings = app.state.settings
            if settings.redis_url:
                rp.shared_refresh = SharedRefresh.from_url(
                    settings.redis_url, service=rp.service, codec=rp.codec(settings)
                )
            try:
                yield state
            finally:
                if rp.shared_refresh is not None:
                    await rp.shared_refresh.close()
                    rp.shared_refresh = None

    app.router.lifespan_context = lifespan
