"""Helpers for the account, admin and audit tests: a portal with browsers that fill in forms.

Each test gets its own client address and its own handles, so that with a shared Redis (CI's
second pass) no test sees another's rate-limit or lockout counters.
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyUniQVerse.app.main import create_app
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.db.models import AuditEvent, User

CSRF_COOKIE = "veze_portal_csrf"
SESSION_COOKIE = "veze_portal_session"
STRONG_PASSWORD = "violet-harbour-engine-42"


def unique(prefix: str) -> str:
    """A handle no other test uses (Redis-backed limits are keyed by handle)."""
    return f"{prefix}{secrets.token_hex(3)}"


def random_ip() -> str:
    return "10.{}.{}.{}".format(*secrets.token_bytes(3))


@dataclass
class Browser:
    """One cookie jar talking to the portal from one address."""

    client: httpx.AsyncClient
    ip: str

    async def csrf(self) -> str:
        token = self.client.cookies.get(CSRF_COOKIE)
        if token is None:
            await self.client.get("/login")
            token = self.client.cookies.get(CSRF_COOKIE)
        assert token is not None
        return token

    async def post(
        self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True
    ) -> httpx.Response:
        form = dict(data or {})
        if csrf:
            form["csrf_token"] = await self.csrf()
        return await self.client.post(path, data=form)

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params or None)

    async def signup(
        self,
        handle: str,
        password: str = STRONG_PASSWORD,
        *,
        display_name: str = "",
        confirm: str | None = None,
        next_path: str = "",
    ) -> httpx.Response:
        return await self.post(
            "/signup",
            {
                "handle": handle,
                "display_name": display_name,
                "password": password,
                "confirm": password if confirm is None else confirm,
                "next": next_path,
            },
        )

    async def login(
        self, handle: str, password: str = STRONG_PASSWORD, *, next_path: str = ""
    ) -> httpx.Response:
        return await self.post(
            "/login", {"handle": handle, "password": password, "next": next_path}
        )

    async def logout(self) -> httpx.Response:
        return await self.post("/logout")

    @property
    def signed_in_cookie(self) -> str | None:
        return self.client.cookies.get(SESSION_COOKIE)


@dataclass
class Portal:
    app: FastAPI
    stack: AsyncExitStack
    browsers: list[Browser] = field(default_factory=list)

    async def browser(self, ip: str | None = None) -> Browser:
        address = ip or random_ip()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app, client=(address, 41000)),
            base_url="http://testserver",
        )
        await self.stack.enter_async_context(client)
        browser = Browser(client=client, ip=address)
        self.browsers.append(browser)
        return browser

    def db(self) -> AsyncSession:
        session: AsyncSession = self.app.state.sessionmaker()
        return session

    async def user(self, handle: str) -> User:
        async with self.db() as db:
            user = await db.scalar(select(User).where(User.handle == handle.lower()))
        assert user is not None, f"no user {handle}"
        return user

    async def audit(self, action: str | None = None) -> list[AuditEvent]:
        async with self.db() as db:
            query = select(AuditEvent).order_by(AuditEvent.id)
            if action is not None:
                query = query.where(AuditEvent.action == action)
            return list(await db.scalars(query))

    async def signed_up(self, prefix: str = "user", **kwargs: Any) -> tuple[Browser, str]:
        """A new browser with a new account, signed in."""
        browser = await self.browser()
        handle = unique(prefix)
        response = await browser.signup(handle, **kwargs)
        assert response.status_code == 303, response.text
        return browser, handle

    async def make_admin(self, handle: str) -> None:
        async with self.db() as db:
            user = await db.scalar(select(User).where(User.handle == handle))
            assert user is not None
            user.roles = ["user", "admin"]
            await db.commit()


@asynccontextmanager
async def portal(settings: PortalSettings) -> AsyncIterator[Portal]:
    app = create_app(settings)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        yield Portal(app=app, stack=stack)


def form_error(page: str) -> str:
    """The text of the form's error box."""
    match = re.search(r'<div class="alert [a-z]+" role="alert"[^>]*>\s*<p>(.*?)</p>', page, re.S)
    assert match is not None, "no error on the page"
    return html.unescape(match.group(1))
