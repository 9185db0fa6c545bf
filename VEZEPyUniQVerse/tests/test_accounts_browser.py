"""A real browser (Debian's Chromium, driven by Playwright) through sign-up, log-out, log-in."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from playwright.async_api import Browser, Route, expect

from VEZEPyCore.testing import serve_app
from VEZEPyUniQVerse.app.main import create_app
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.db.models import OAuthClient
from VEZEPyUniQVerse.tests.accounts_helpers import STRONG_PASSWORD, unique


async def test_sign_up_see_the_account_log_out_and_log_in(
    portal_settings: PortalSettings, browser: Browser
) -> None:
    handle = unique("pat")
    app = create_app(portal_settings)
    async with serve_app(app) as base:
        page = await browser.new_page()
        await page.goto(base + "/")
        await page.get_by_role("link", name="Sign up").click()
        await page.get_by_label("Handle").fill(handle)
        await page.get_by_label("Display name").fill("Pat Browser")
        await page.get_by_label("Password", exact=True).fill(STRONG_PASSWORD)
        await page.get_by_label("Password again").fill(STRONG_PASSWORD)
        await page.get_by_role("button", name="Sign up").click()

        await expect(page).to_have_url(base + "/home")  # the dashboard is where one lands
        await page.goto(base + "/account")
        await expect(page.get_by_role("heading", name="Your account")).to_be_visible()
        await expect(page.get_by_text(f"{handle}@vezeuniqverse.com").first).to_be_visible()
        cookies = {cookie["name"]: cookie for cookie in await page.context.cookies()}
        assert cookies["veze_portal_session"]["httpOnly"]

        # A client with a front-channel logout URI; its frame is held until the page is checked.
        held: asyncio.Future[Route] = asyncio.get_running_loop().create_future()

        async def hold(route: Route) -> None:
            held.set_result(route)

        await page.route(re.compile(r"^https://rp\.test/"), hold)
        async with app.state.sessionmaker() as db:
            db.add(
                OAuthClient(
                    client_id="zz-browser-rp",
                    name="Browser test client",
                    redirect_uris=[],
                    grant_types=[],
                    scopes=[],
                    audiences=[],
                    frontchannel_logout_uri="https://rp.test/logout",
                    enabled=True,
                    updated_at=datetime.now(UTC),
                )
            )
            await db.commit()
        async with page.expect_request(re.compile(r"^https://rp\.test/")) as frame_request:
            await page.get_by_role("button", name="Log out").click()
        await expect(page.get_by_role("heading", name="Signing you out")).to_be_visible()
        query = parse_qs(urlsplit((await frame_request.value).url).query)
        assert query["iss"] == [portal_settings.jwt_iss]
        assert re.fullmatch(r"[0-9a-f]{32}", query["sid"][0])
        await (await asyncio.wait_for(held, timeout=10)).fulfill(status=200, body="signed out")
        # Every frame has loaded (or failed): the page goes home by itself.
        await expect(page).to_have_url(base + "/", timeout=10_000)
        # Signed out: the landing page offers to log in again (its own button and the header's).
        await expect(page.locator("#landing-login")).to_be_visible()
        assert "veze_portal_session" not in {c["name"] for c in await page.context.cookies()}

        await page.goto(base + "/account")
        await expect(page).to_have_url(re.compile(r"/login\?next=%2Faccount$"))
        await page.get_by_label("Handle").fill(handle.upper())
        await page.get_by_label("Password").fill("not-the-password")
        await page.get_by_role("button", name="Log in").click()
        await expect(page.get_by_role("alert")).to_have_text("Wrong handle or password.")
        await page.get_by_label("Password").fill(STRONG_PASSWORD)
        await page.get_by_role("button", name="Log in").click()

        await expect(page).to_have_url(base + "/account")
        await expect(page.get_by_text("Pat Browser").first).to_be_visible()
        await page.close()
