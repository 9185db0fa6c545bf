"""The sign-on journey in a real browser: Debian's Chromium driven by Playwright.

Sign up at the portal, open webmail and be in without typing anything, find the welcome mail,
open the game page and be recognised, log out at the portal and be logged out of both. The
three services run on real ports of 127.0.0.1 (one site, three origins: the cookies of each
service carry its own name, and the portal's logout page frames the others' front-channel
logout URLs, which only works if their SameSite=Lax cookies reach those frames).

Screenshots of the signed-in pages go to `VEZE_SCREENSHOT_DIR` when it is set, else to the
test's temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from VEZEPyCore.testing import free_port, serve_app
from VEZEPyEmail.app.main import create_app as create_email_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyGame.app.main import create_app as create_game_app
from VEZEPyGame.app.settings import GameSettings
from VEZEPyUniQVerse.app.main import create_app as create_portal_app
from VEZEPyUniQVerse.app.settings import PortalSettings

PASSWORD = "amber-falcon-meadow-58"
WELCOME_SUBJECT = "Welcome to VEZE UniQVerse"
#: Bounds for conditions the test waits for (provisioning runs from a queue).
WELCOME_TIMEOUT_SECONDS = 30.0
STEP_TIMEOUT_MS = 15_000

pytestmark = pytest.mark.timeout(180)


@dataclass(frozen=True)
class Services:
    portal: str
    email: str
    game: str


@pytest.fixture
async def services(
    portal_settings: PortalSettings, email_settings: EmailSettings, game_settings: GameSettings
) -> AsyncIterator[Services]:
    """Portal, Email and Game on real ports, wired as the Procfile wires them."""
    ports = {name: free_port() for name in ("portal", "email", "game")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    shared = {"service_urls": dict(urls), "public_urls": dict(urls), "jwt_iss": urls["portal"]}
    by_jwks = {**shared, "jwks_url": f"{urls['portal']}/.well-known/jwks.json"}
    apps = {
        "portal": create_portal_app(portal_settings.model_copy(update=shared)),
        "email": create_email_app(email_settings.model_copy(update=by_jwks)),
        "game": create_game_app(game_settings.model_copy(update=by_jwks)),
    }
    async with AsyncExitStack() as stack:
        for name, app in apps.items():
            await stack.enter_async_context(serve_app(app, port=ports[name]))
        yield Services(**urls)


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    configured = os.environ.get("VEZE_SCREENSHOT_DIR")
    path = Path(configured) if configured else tmp_path / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


async def test_sign_up_then_webmail_and_game_know_you_until_you_log_out(
    services: Services, browser: Browser, screenshot_dir: Path
) -> None:
    handle = "pw" + secrets.token_hex(3)
    context = await browser.new_context()
    context.set_default_timeout(STEP_TIMEOUT_MS)
    page = await context.new_page()

    # Sign up at the portal and land on it, signed in.
    await sign_up(page, services, handle)
    portal_cookies = {cookie["name"] for cookie in await context.cookies()}
    assert "veze_portal_session" in portal_cookies

    # Webmail: in without typing anything, and the welcome mail arrives.
    await page.goto(f"{services.email}/ui/inbox")
    assert page.url == f"{services.email}/ui/inbox"
    await expect(page.locator("#signed-in-as")).to_contain_text(handle)
    await wait_for_welcome(page)
    await page.screenshot(path=str(screenshot_dir / "webmail-signed-in.png"), full_page=True)

    # The game page recognises the same person.
    await page.goto(f"{services.game}/ui")
    await expect(page.locator("#signed-in-as")).to_contain_text(handle)
    assert page.url == f"{services.game}/ui"
    await page.screenshot(path=str(screenshot_dir / "game-signed-in.png"), full_page=True)

    cookies = {cookie["name"]: cookie for cookie in await context.cookies()}
    for name in ("veze_email_session", "veze_game_session"):
        assert cookies[name]["httpOnly"] and cookies[name]["sameSite"] == "Lax"

    # Log out at the portal: its page frames each service's front-channel logout URL.
    await page.goto(f"{services.portal}/logout")
    await page.click("main form[action$='/logout'] button[type=submit]")
    await page.wait_for_url(f"{services.portal}/", timeout=STEP_TIMEOUT_MS)
    remaining = {cookie["name"] for cookie in await context.cookies()}
    # The frames cleared the services' cookies themselves (the access tokens are still
    # valid for minutes, so nothing else would have ended these sessions yet).
    assert "veze_email_session" not in remaining
    assert "veze_game_session" not in remaining
    assert "veze_portal_session" not in remaining

    # Webmail now sends the browser to sign in at the portal; the game offers to sign in.
    await page.goto(f"{services.email}/ui/inbox")
    assert page.url.startswith(f"{services.portal}/login"), page.url
    await page.goto(f"{services.game}/ui")
    assert page.url == f"{services.game}/ui"
    await expect(page.locator("#sign-in")).to_be_visible()
    await expect(page.locator("#signed-in-as")).to_have_count(0)
    await page.screenshot(path=str(screenshot_dir / "game-signed-out.png"), full_page=True)
    await context.close()


async def test_the_game_pages_sign_out_button_signs_out_everywhere(
    services: Services, browser: Browser
) -> None:
    handle = "pw" + secrets.token_hex(3)
    context = await browser.new_context()
    context.set_default_timeout(STEP_TIMEOUT_MS)
    page = await context.new_page()
    await sign_up(page, services, handle)
    await page.goto(f"{services.email}/ui/inbox")
    await expect(page.locator("#signed-in-as")).to_contain_text(handle)
    await page.goto(f"{services.game}/ui")
    await expect(page.locator("#signed-in-as")).to_contain_text(handle)

    # "Sign out" on the game page goes through the portal's logout, which ends every session.
    await page.click("#sign-out")
    await page.wait_for_url(f"{services.portal}/logout")
    await page.click("main form[action$='/logout'] button[type=submit]")
    await page.wait_for_url(f"{services.portal}/")
    names = {cookie["name"] for cookie in await context.cookies()}
    assert not names & {"veze_portal_session", "veze_email_session", "veze_game_session"}

    await page.goto(f"{services.email}/ui/inbox")
    assert page.url.startswith(f"{services.portal}/login"), page.url
    await page.goto(f"{services.game}/ui")
    await expect(page.locator("#sign-in")).to_be_visible()
    await context.close()


async def sign_up(page: Page, services: Services, handle: str) -> None:
    """Fill in the portal's sign-up form; the browser lands on the portal, signed in."""
    await page.goto(f"{services.portal}/signup")
    await page.fill("#handle", handle)
    await page.fill("#display_name", handle.title())
    await page.fill("#password", PASSWORD)
    await page.fill("#confirm", PASSWORD)
    await page.click("form[action$='/signup'] button[type=submit]")
    await page.wait_for_load_state()
    assert page.url.startswith(services.portal), page.url


async def wait_for_welcome(page: Page) -> None:
    """Provisioning runs from a queue: reload the inbox until the welcome mail is listed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WELCOME_TIMEOUT_SECONDS
    while WELCOME_SUBJECT not in await page.content():
        if loop.time() > deadline:
            raise AssertionError(f"no welcome mail within {WELCOME_TIMEOUT_SECONDS}s")
        await page.wait_for_timeout(500)
        await page.reload()
