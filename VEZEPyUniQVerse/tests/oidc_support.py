"""Helpers for the OpenID Connect provider's tests (imported by the cross-service tests too).

The portal is served on a real port whose URL is also its issuer, so the discovery document's
endpoints are the ones a real client can reach (the port is chosen before the app is built:
the app must know its issuer URL).
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import FastAPI
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response

from VEZEPyCore.testing import free_port, serve_app
from VEZEPyUniQVerse.app.main import create_app
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.db.models import User
from VEZEPyUniQVerse.services.accounts.passwords import hash_password
from VEZEPyUniQVerse.services.accounts.sessions import SESSION_COOKIE, create_session

PASSWORD = "correct horse battery staple 42"


@dataclass(frozen=True)
class ServedPortal:
    app: FastAPI
    url: str
    settings: PortalSettings

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        sessionmaker: async_sessionmaker[AsyncSession] = self.app.state.sessionmaker
        return sessionmaker

    def secret(self, client_id: str) -> str:
        secret = self.settings.client_secret(client_id)
        assert secret is not None
        return secret


@asynccontextmanager
async def serve_portal(settings: PortalSettings, **changes: Any) -> AsyncIterator[ServedPortal]:
    """The portal under uvicorn on 127.0.0.1, its issuer being the URL it is served at."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    served_settings = settings.model_copy(update={"jwt_iss": url, **changes})
    app = create_app(served_settings)
    async with serve_app(app, port=port):
        yield ServedPortal(app=app, url=url, settings=served_settings)


async def create_user(
    portal: ServedPortal | FastAPI,
    handle: str,
    *,
    roles: list[str] | None = None,
    display_name: str = "",
) -> User:
    app = portal.app if isinstance(portal, ServedPortal) else portal
    now = datetime.now(UTC)
    user = User(
        handle=handle,
        display_name=display_name or handle.title(),
        password_hash=hash_password(PASSWORD),
        roles=roles if roles is not None else ["user"],
        disabled=False,
        totp_enabled=False,
        created_at=now,
        updated_at=now,
        password_changed_at=now,
    )
    async with app.state.sessionmaker.begin() as db:
        db.add(user)
    return user


async def log_in(
    portal: ServedPortal | FastAPI, user: User, *, second_factor_done: bool = True
) -> tuple[str, str]:
    """Start a portal session for `user` the way the log-in page does: (cookie value, sid)."""
    app = portal.app if isinstance(portal, ServedPortal) else portal
    request = Request(
        {
            "type": "http",
            "method": "POST",
            "path": "/login",
            "headers": [(b"user-agent", b"pytest")],
            "client": ("127.0.0.1", 40000),
        }
    )
    response = Response()
    async with app.state.sessionmaker.begin() as db:
        web_session = await create_session(
            db,
            response,
            user=user,
            request=request,
            secure=False,
            second_factor_done=second_factor_done,
        )
        sid = web_session.sid
    cookie = response.headers["set-cookie"].split(";", 1)[0]
    name, _, value = cookie.partition("=")
    assert name == SESSION_COOKIE
    return value, sid


async def follow_authorize(portal_url: str, authorize_url: str, cookie: str | None) -> str:
    """GET the authorization URL as the browser would (with the session cookie); the Location."""
    cookies = {SESSION_COOKIE: cookie} if cookie else {}
    async with httpx.AsyncClient(base_url=portal_url, cookies=cookies) as browser:
        response = await browser.get(authorize_url, follow_redirects=False)
    assert response.status_code in (302, 303), response.text
    return response.headers["location"]


def query_of(location: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


async def fetch_jwks(portal_url: str) -> KeySet:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{portal_url}/.well-known/jwks.json")
    response.raise_for_status()
    return KeySet.import_key_set(response.json())


def header_of(token: str) -> dict[str, Any]:
    return dict(extract_compact(token.encode()).protected)


def claims_of(token: str) -> dict[str, Any]:
    """The payload, unverified (the tests verify signatures where that is the point)."""
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))
