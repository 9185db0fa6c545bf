"""In a real browser (Debian's Chromium, Playwright): mail sent over SMTP to a signed-in
person appears in the portal header's bell without a reload; the copilot page talks.

Screenshots go to `VEZE_SCREENSHOT_DIR` when it is set, else to the test's temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import smtplib
from pathlib import Path

import pytest
from playwright.async_api import async_playwright, expect

from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyGame.app.settings import GameSettings
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.tests.accounts_helpers import STRONG_PASSWORD
from VEZEPyUniQVerse.tests.hub_support import DOMAIN, platform, provisioned

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STEP_TIMEOUT_MS = 15_000

pytestmark = pytest.mark.timeout(120)


def send_smtp(port: int, to: str, subject: str) -> None:
    message = (
        f"From: dora@example.org\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{secrets.token_hex(8)}@example.org>\r\n\r\nSee you there.\r\n"
    )
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail("dora@example.org", [to], message.encode())


async def test_smtp_mail_shows_up_live_in_the_portal_header(
    portal_settings: PortalSettings,
    email_settings: EmailSettings,
    game_settings: GameSettings,
    tmp_path: Path,
) -> None:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is not installed (apt-get install chromium)")
    shots = Path(os.environ.get("VEZE_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    handle = "bell" + secrets.token_hex(3)
    async with (
        platform(portal_settings, email_settings, game_settings, smtp=True) as plat,
        async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            context.set_default_timeout(STEP_TIMEOUT_MS)
            page = await context.new_page()
            await page.goto(f"{plat.portal}/signup?next=/home")
            await page.fill("#handle", handle)
            await page.fill("#display_name", handle.title())
            await page.fill("#password", STRONG_PASSWORD)
            await page.fill("#confirm", STRONG_PASSWORD)
            await page.click("form[action$='/signup'] button[type=submit]")
            await page.wait_for_url(f"{plat.portal}/home")
            await provisioned(plat.portal_app, handle, ("email", "game"))
            await page.reload()

            bell = page.locator("#bell")
            # The bell says which sources are live once the portal's upstream is subscribed.
            await expect(bell).to_have_attribute("data-live", "game mail")
            await expect(page.locator("#mail-unread")).to_have_text("1")
            await page.screenshot(path=str(shots / "portal-home.png"), full_page=True)

            await asyncio.to_thread(
                send_smtp, plat.mx_port(), f"{handle}@{DOMAIN}", "Dinner on Friday?"
            )
            await expect(page.locator("#bell-count")).to_have_text("1")
            await expect(page.locator("#mail-unread")).to_have_text("2")
            await page.screenshot(path=str(shots / "portal-bell-count.png"))
            await page.click(".bell-button")
            item = page.locator("#bell-list .bell-item").first
            await expect(item).to_contain_text("New mail from dora@example.org")
            await expect(item).to_contain_text("Dinner on Friday?")
            await page.screenshot(path=str(shots / "portal-home-notification.png"))

            await page.goto(f"{plat.portal}/copilot")
            log = page.locator("#copilot-log")
            await expect(log).to_have_attribute("data-state", "open")
            await page.fill("#copilot-input", "unread mail")
            await page.press("#copilot-input", "Enter")
            reply = page.locator("#copilot-log .copilot-msg.bot[data-command='unread mail']")
            await expect(reply).to_contain_text("You have 2 unread messages.")
            await expect(reply).to_contain_text("Dinner on Friday?")
            await page.fill("#copilot-input", f"send mail to {handle} subject Note: hello me")
            await page.press("#copilot-input", "Enter")
            confirm = page.locator("#copilot-log .copilot-msg.bot[data-type='confirm']")
            await expect(confirm).to_contain_text("Answer yes or no.")
            await page.screenshot(path=str(shots / "portal-copilot.png"), full_page=True)
            await context.close()
        finally:
            await browser.close()
