"""The three services on real ports, wired as the Procfile wires them, for the hub tests.

Game and Email verify the portal's tokens through its JWKS, as in production; people sign up
through the portal's own form, and provisioning creates their mailbox and player for real.
"""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from VEZEPyCore.testing import free_port, serve_app
from VEZEPyEmail.app.main import create_app as create_email_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyGame.app.main import create_app as create_game_app
from VEZEPyGame.app.settings import GameSettings
from VEZEPyUniQVerse.app.main import create_app as create_portal_app
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.db.models import ProvisioningTask
from VEZEPyUniQVerse.tests.accounts_helpers import CSRF_COOKIE, STRONG_PASSWORD, unique
from VEZEPyUniQVerse.tests.helpers import dead_url

DOMAIN = "vezeuniqverse.com"
WAIT_SECONDS = 30.0


@dataclass
class Platform:
    portal: str
    email: str
    game: str
    portal_app: FastAPI
    email_app: FastAPI | None

    @property
    def ws(self) -> str:
        return self.portal.replace("http://", "ws://", 1)

    def mx_port(self) -> int:
        assert self.email_app is not None
        port: int = self.email_app.state.smtp.port("mx")
        return port


@asynccontextmanager
async def platform(
    portal_settings: PortalSettings,
    email_settings: EmailSettings,
    game_settings: GameSettings,
    *,
    email_up: bool = True,
    email_url: str | None = None,
    smtp: bool = False,
) -> AsyncIterator[Platform]:
    """`email_up=False`: Email is not running; its URL is `email_url` (say, a stalled
    server) or a port where nothing listens."""
    ports = {name: free_port() for name in ("portal", "email", "game")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    if not email_up:
        urls["email"] = email_url or dead_url()
    shared = {"service_urls": dict(urls), "public_urls": dict(urls), "jwt_iss": urls["portal"]}
    by_jwks = {**shared, "jwks_url": f"{urls['portal']}/.well-known/jwks.json"}
    email_extra: dict[str, Any] = {}
    if smtp:
        email_extra = {
            "smtp_enabled": True,
            "smtp_host": "127.0.0.1",
            "smtp_mx_port": 0,
            "smtp_submission_port": 0,
            "smtps_port": 0,
        }
    portal_app = create_portal_app(portal_settings.model_copy(update=shared))
    game_app = create_game_app(game_settings.model_copy(update=by_jwks))
    email_app = (
        create_email_app(email_settings.model_copy(update={**by_jwks, **email_extra}))
        if email_up
        else None
    )
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(serve_app(portal_app, port=ports["portal"]))
        await stack.enter_async_context(serve_app(game_app, port=ports["game"]))
        if email_app is not None:
            await stack.enter_async_context(serve_app(email_app, port=ports["email"]))
        yield Platform(
            portal=urls["portal"],
            email=urls["email"],
            game=urls["game"],
            portal_app=portal_app,
            email_app=email_app,
        )


@dataclass
class Person:
    handle: str
    client: httpx.AsyncClient

    @property
    def address(self) -> str:
        return f"{self.handle}@{DOMAIN}"

    async def copilot_token(self) -> str:
        """The token the copilot page hands its WebSocket, read from the page itself."""
        page = await self.client.get("/copilot")
        assert page.status_code == 200, page.text
        found = re.search(r'data-token="([^"]+)"', page.text)
        assert found is not None
        return html.unescape(found.group(1))


async def sign_up(
    stack: AsyncExitStack,
    plat: Platform,
    prefix: str,
    *,
    wait_for: tuple[str, ...] = ("email", "game"),
) -> Person:
    """A new account through the sign-up form, signed in, its resources provisioned."""
    client = await stack.enter_async_context(httpx.AsyncClient(base_url=plat.portal, timeout=20.0))
    await client.get("/login")
    handle = unique(prefix)
    response = await client.post(
        "/signup",
        data={
            "handle": handle,
            "display_name": handle.title(),
            "password": STRONG_PASSWORD,
            "confirm": STRONG_PASSWORD,
            "next": "/home",
            "csrf_token": client.cookies[CSRF_COOKIE],
        },
    )
    assert response.status_code == 303, response.text
    await provisioned(plat.portal_app, handle, wait_for)
    return Person(handle=handle, client=client)


async def provisioned(app: FastAPI, handle: str, targets: tuple[str, ...]) -> None:
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            async with app.state.sessionmaker() as db:
                done = set(
                    await db.scalars(
                        select(ProvisioningTask.target).where(
                            ProvisioningTask.handle == handle, ProvisioningTask.status == "done"
                        )
                    )
                )
            if set(targets) <= done:
                return
            await asyncio.sleep(0.05)
