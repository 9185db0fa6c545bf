"""The play pages in Debian's Chromium: a draw offered and accepted between two browsers
(each board updates live), the bot opening when the player takes the second seat, the
lobby and home pages doing one job each, and form controls in the page's font.

Screenshots go to `VEZE_SCREENSHOT_DIR` when it is set, else to the test's temporary folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, expect

from VEZEPyCore.testing import serve_app
from VEZEPyCore.web.sso import session_cookie_name
from VEZEPyGame.app.settings import GameSettings
from VEZEPyGame.tests.conftest import GameAppFactory
from VEZEPyGame.tests.match_support import FAST_MATCHES, Minter, make_players, start_match
from VEZEPyGame.tests.test_match_ui import STEP_TIMEOUT_MS, screenshot_dir, session_cookie

__all__ = ["screenshot_dir"]  # the fixture, shared with the other browser test

pytestmark = pytest.mark.timeout(120)

#: The computed font of the body and of every button, select and checkbox label on the page.
FONTS = """() => {
  const body = getComputedStyle(document.body);
  const controls = [...document.querySelectorAll("button, select, input[type=submit]")];
  return {
    body: [body.fontFamily, body.fontSize],
    controls: controls.map(el => [el.id || el.textContent.trim(),
                                  getComputedStyle(el).fontFamily, getComputedStyle(el).fontSize]),
  };
}"""


async def signed_in(
    browser: Browser, base_url: str, settings: GameSettings, app: object, mint: Minter, handle: str
) -> BrowserContext:
    context = await browser.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    await context.add_cookies(
        [
            {
                "name": session_cookie_name("game"),
                "value": session_cookie(settings, app.state, mint, handle),  # type: ignore[attr-defined]
                "url": base_url,
                "httpOnly": True,
                "sameSite": "Lax",
            }
        ]
    )
    return context


async def test_a_draw_offered_in_one_browser_is_accepted_in_the_other(
    make_game_app: GameAppFactory,
    game_settings: GameSettings,
    mint: Minter,
    screenshot_dir: Path,
    browser: Browser,
) -> None:
    app = make_game_app(**FAST_MATCHES)
    async with serve_app(app) as base_url:
        ids = await make_players(app, "alice", "bob")
        match_id = await start_match(app, first=ids["alice"], second=ids["bob"], mode="casual")
        alice = await signed_in(browser, base_url, game_settings, app, mint, "alice")
        bob = await signed_in(browser, base_url, game_settings, app, mint, "bob")
        errors: list[str] = []
        pages = []
        for context in (alice, bob):
            page = await context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(f"{base_url}/ui/matches/{match_id}")
            await expect(page.locator("#offer-draw")).to_be_visible()
            pages.append(page)
        alice_page, bob_page = pages

        await alice_page.click("#offer-draw")
        await expect(alice_page.locator("#draw-text")).to_contain_text("You offered a draw")
        await expect(alice_page.locator("#offer-draw")).to_be_hidden()
        # Bob's board hears it over SSE, with nothing clicked or reloaded.
        await expect(bob_page.locator("#draw-text")).to_contain_text("offers a draw")
        await bob_page.screenshot(path=str(screenshot_dir / "game-draw-offer.png"), full_page=True)
        await bob_page.click("#draw-decline")
        await expect(alice_page.locator("#draw-offer")).to_be_hidden()
        # Declined: alice's offer button stays in place but off, and the hint says until when.
        await expect(alice_page.locator("#offer-draw")).to_be_disabled()
        await expect(alice_page.locator("#draw-hint")).to_have_text(
            "Bob declined your draw offer. You can offer another draw after 3 more moves of yours."
        )
        await alice_page.screenshot(
            path=str(screenshot_dir / "game-draw-cooldown.png"), full_page=True
        )

        await bob_page.click("#offer-draw")
        await expect(alice_page.locator("#draw-accept")).to_be_visible()
        await alice_page.click("#draw-accept")
        for page in pages:
            await expect(page.locator("#match")).to_have_attribute("data-status", "finished")
            await expect(page.locator("#status-line")).to_have_text("Draw: agreement.")
            await expect(page.locator("#draw-offer")).to_be_hidden()
        await alice_page.screenshot(
            path=str(screenshot_dir / "game-draw-agreed.png"), full_page=True
        )
        await alice.close()
        await bob.close()
    assert errors == []


async def test_lobby_home_and_queue_pages_and_the_bot_opening(
    make_game_app: GameAppFactory,
    game_settings: GameSettings,
    mint: Minter,
    screenshot_dir: Path,
    browser: Browser,
) -> None:
    app = make_game_app(**FAST_MATCHES, matchmaker_enabled=False)
    async with serve_app(app) as base_url:
        await make_players(app, "alice")
        context = await signed_in(browser, base_url, game_settings, app, mint, "alice")
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))

        await page.goto(f"{base_url}/ui")
        await expect(page.locator("#my-ratings")).to_be_visible()
        await expect(page.locator("#play-ranked")).to_have_count(0)
        await page.screenshot(path=str(screenshot_dir / "game-home.png"), full_page=True)
        home_fonts = await page.evaluate(FONTS)

        await page.click("#go-play")
        await page.wait_for_url(f"{base_url}/ui/play")
        await expect(page.locator("#ranked-bot-fill")).not_to_be_checked()
        await expect(page.locator("#casual-bot-fill")).to_be_checked()
        await page.screenshot(path=str(screenshot_dir / "game-lobby.png"), full_page=True)
        lobby_fonts = await page.evaluate(FONTS)

        await page.goto(f"{base_url}/ui/queue")
        await page.screenshot(path=str(screenshot_dir / "game-queue.png"), full_page=True)
        queue_fonts = await page.evaluate(FONTS)

        # Second seat against the bot: the board opens with the bot's stone, alice to move.
        await page.goto(f"{base_url}/ui/play")
        await page.check("#side-second")
        await page.click("#bot-level-1")
        await page.wait_for_url(f"{base_url}/ui/matches/*")
        await expect(page.locator("#match")).to_have_attribute("data-moves", "1")
        await expect(page.locator("#status-line")).to_contain_text("Your move")
        await expect(page.locator("#board .cell.stone-first")).to_have_count(1)
        await expect(page.locator("#offer-draw")).to_be_enabled()  # the bot takes offers too
        await expect(page.locator("#seat-second")).to_contain_text("you")
        await page.screenshot(path=str(screenshot_dir / "game-bot-opens.png"), full_page=True)
        await context.close()
    assert errors == []
    for fonts in (home_fonts, lobby_fonts, queue_fonts):
        family, size = fonts["body"]
        assert fonts["controls"], "the page has form controls"
        for name, control_family, control_size in fonts["controls"]:
            assert (control_family, control_size) == (family, size), name
