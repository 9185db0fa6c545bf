"""Single sign-on against the real portal: sign-up, webmail and game sessions, refresh with
rotation, and logging out everywhere, with the three services on real ports finding each
other the way `honcho start` wires them (the issuer is the portal's URL; Email and Game
verify its tokens through its JWKS).
"""

from __future__ import annotations

import asyncio
import html
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from VEZEPyCore.testing import free_port, serve_app
from VEZEPyEmail.app.main import create_app as create_email_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyGame.app.main import create_app as create_game_app
from VEZEPyGame.app.settings import GameSettings
from VEZEPyUniQVerse.app.main import create_app as create_portal_app
from VEZEPyUniQVerse.app.settings import PortalSettings

PASSWORD = "quiet-lantern-orchard-73"
BROWSER_HTML = {"Accept": "text/html,application/xhtml+xml", "Sec-Fetch-Mode": "navigate"}
WELCOME_SUBJECT = "Welcome to VEZE UniQVerse"


@dataclass
class Platform:
    portal: FastAPI
    urls: dict[str, str]
    browser: httpx.AsyncClient

    async def follow(self, url: str, **kwargs: Any) -> httpx.Response:
        """GET `url`, following redirects like a browser; no hop may carry a token."""
        response = await self.browser.get(url, **kwargs)
        for _ in range(12):
            if response.status_code not in (301, 302, 303, 307, 308):
                return response
            location = response.headers["location"]
            assert "access_token" not in location and "refresh_token" not in location
            response = await self.browser.get(
                httpx.URL(str(response.url)).join(location), headers=kwargs.get("headers")
            )
        raise AssertionError("too many redirects")

    async def sign_up(self, handle: str) -> httpx.Response:
        await self.browser.get(f"{self.urls['portal']}/signup")
        csrf = self.browser.cookies.get("veze_portal_csrf", domain="127.0.0.1")
        assert csrf
        response = await self.browser.post(
            f"{self.urls['portal']}/signup",
            data={
                "handle": handle,
                "display_name": handle.title(),
                "password": PASSWORD,
                "confirm": PASSWORD,
                "csrf_token": csrf,
            },
        )
        assert response.status_code == 303, response.text
        return response

    async def log_out_at_the_portal(self) -> list[str]:
        """POST the portal's logout form; the front-channel logout URLs its page frames."""
        page = await self.browser.get(f"{self.urls['portal']}/logout")
        assert page.status_code == 200
        csrf = self.browser.cookies.get("veze_portal_csrf", domain="127.0.0.1")
        out = await self.browser.post(
            f"{self.urls['portal']}/logout", data={"csrf_token": csrf or ""}
        )
        assert out.status_code == 200, out.text
        return [html.unescape(src) for src in re.findall(r'<iframe src="([^"]+)"', out.text)]

    async def wait_for_welcome_mail(self, timeout: float = 20.0) -> httpx.Response:
        """Provisioning is asynchronous (a queue): reload the inbox until the mail is there."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            inbox = await self.browser.get(f"{self.urls['email']}/ui/inbox")
            if inbox.status_code == 200 and WELCOME_SUBJECT in inbox.text:
                return inbox
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no welcome mail within {timeout}s: {inbox.status_code}")
            await asyncio.sleep(0.3)

    def cookie(self, name: str) -> str | None:
        return self.browser.cookies.get(name, domain="127.0.0.1")


PlatformFactory = Callable[..., Awaitable[Platform]]


@pytest.fixture
async def platform(
    portal_settings: PortalSettings,
    email_settings: EmailSettings,
    game_settings: GameSettings,
) -> AsyncIterator[PlatformFactory]:
    """`await platform(**portal_changes)`: the three services, served and wired together."""
    async with AsyncExitStack() as stack:

        async def start(**portal_changes: Any) -> Platform:
            ports = {name: free_port() for name in ("portal", "email", "game")}
            urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
            shared = {
                "service_urls": dict(urls),
                "public_urls": dict(urls),
                "jwt_iss": urls["portal"],
            }
            verify_by_jwks = {**shared, "jwks_url": f"{urls['portal']}/.well-known/jwks.json"}
            portal = create_portal_app(
                portal_settings.model_copy(update={**shared, **portal_changes})
            )
            email = create_email_app(email_settings.model_copy(update=verify_by_jwks))
            game = create_game_app(game_settings.model_copy(update=verify_by_jwks))
            for app, name in ((portal, "portal"), (email, "email"), (game, "game")):
                await stack.enter_async_context(serve_app(app, port=ports[name]))
            browser = await stack.enter_async_context(httpx.AsyncClient(timeout=15))
            return Platform(portal=portal, urls=urls, browser=browser)

        yield start


def handle() -> str:
    return "sso" + secrets.token_hex(3)


async def test_signed_up_at_the_portal_webmail_and_game_recognise_you(
    platform: PlatformFactory,
) -> None:
    world = await platform()
    name = handle()
    await world.sign_up(name)

    inbox = await world.follow(f"{world.urls['email']}/ui/inbox", headers=BROWSER_HTML)
    assert inbox.status_code == 200, inbox.text
    assert str(inbox.url) == f"{world.urls['email']}/ui/inbox"
    assert f"Signed in as <strong>{name}</strong>" in inbox.text
    inbox = await world.wait_for_welcome_mail()
    assert f"{name}@vezeuniqverse.com" in inbox.text

    game = await world.follow(f"{world.urls['game']}/ui", headers=BROWSER_HTML)
    assert game.status_code == 200
    assert f"Signed in as <strong>{name}</strong>" in game.text

    # Real tokens fit the cookies, and each service has its own.
    for cookie in ("veze_email_session", "veze_game_session"):
        value = world.cookie(cookie)
        assert value is not None and len(value) < 3800
    # The game's token also reaches Email (audiences veze-game and veze-email).
    mail = await world.browser.get(
        f"{world.urls['game']}/email/mail", params={"user": f"{name}@vezeuniqverse.com"}
    )
    assert mail.status_code == 200, mail.text
    assert mail.json()["messages"][0]["subject"] == WELCOME_SUBJECT


async def test_logging_out_at_the_portal_logs_out_of_webmail_and_game(
    platform: PlatformFactory,
) -> None:
    world = await platform()
    await world.sign_up(handle())
    assert (await world.follow(f"{world.urls['email']}/ui/inbox")).status_code == 200
    await world.follow(f"{world.urls['game']}/ui", headers=BROWSER_HTML)
    assert world.cookie("veze_game_session") is not None

    frames = await world.log_out_at_the_portal()
    assert sorted(url.split("?")[0] for url in frames) == sorted(
        [
            f"{world.urls['email']}/auth/frontchannel-logout",
            f"{world.urls['game']}/auth/frontchannel-logout",
        ]
    )
    for url in frames:  # what the hidden iframes do in a browser
        answer = await world.browser.get(url)
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "no-store"
    assert world.cookie("veze_email_session") is None
    assert world.cookie("veze_game_session") is None

    inbox = await world.browser.get(f"{world.urls['email']}/ui/inbox")
    assert inbox.status_code == 303
    assert inbox.headers["location"].startswith("/auth/login")
    signin = await world.follow(f"{world.urls['email']}/ui/inbox")
    assert str(signin.url).startswith(f"{world.urls['portal']}/login")
    game = await world.follow(f"{world.urls['game']}/ui", headers=BROWSER_HTML)
    assert 'id="sign-in"' in game.text and "Signed in as" not in game.text


async def test_refresh_rotates_with_the_real_portal_and_ends_with_its_session(
    platform: PlatformFactory,
) -> None:
    # Access tokens of 30 s are always inside the 60 s margin: every request refreshes.
    world = await platform(access_token_ttl_seconds=30)
    await world.sign_up(handle())
    assert (await world.follow(f"{world.urls['email']}/ui/inbox")).status_code == 200
    seen = {world.cookie("veze_email_session")}
    for _ in range(3):
        page = await world.browser.get(f"{world.urls['email']}/ui/inbox")
        assert page.status_code == 200
        seen.add(world.cookie("veze_email_session"))
    assert len(seen) == 4  # a new access and refresh token each time, none reused
    concurrent = await asyncio.gather(
        *(world.browser.get(f"{world.urls['email']}/ui/inbox") for _ in range(5))
    )
    assert all(page.status_code == 200 for page in concurrent)  # single-flight: no reuse
    assert (await world.browser.get(f"{world.urls['email']}/ui/inbox")).status_code == 200

    # Log out at the portal without the front-channel frames: the next refresh is refused
    # (the portal revoked the session's tokens), so the session ends all the same.
    await world.log_out_at_the_portal()
    assert world.cookie("veze_email_session") is not None
    page = await world.browser.get(f"{world.urls['email']}/ui/inbox")
    assert page.status_code == 303
    assert page.headers["location"] == "/auth/login?next=%2Fui%2Finbox"
    assert world.cookie("veze_email_session") is None
