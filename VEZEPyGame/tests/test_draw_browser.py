"""The draw controls against the bot in Debian's Chromium: a declined offer leaves the button
disabled with the reason beside it; an offer in a lost position ends the match drawn.

Screenshots go to `VEZE_SCREENSHOT_DIR` when it is set, else to the test's temporary folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from VEZEPyCore.testing import serve_app
from VEZEPyGame.app.settings import GameSettings
from VEZEPyGame.tests.conftest import GameAppFactory
from VEZEPyGame.tests.match_support import FAST_MATCHES, Minter, make_players
from VEZEPyGame.tests.test_draw_cooldown_and_bot import LOST_FOR_BOT, WON_FOR_BOT, bot_match_at
from VEZEPyGame.tests.test_game_play_browser import signed_in
from VEZEPyGame.tests.test_match_ui import screenshot_dir

__all__ = ["screenshot_dir"]  # the fixture, shared with the other browser tests

pytestmark = pytest.mark.timeout(120)


async def test_the_bot_declines_in_the_page_and_the_offer_button_cools_down(
    make_game_app: GameAppFactory,
    game_settings: GameSettings,
    mint: Minter,
    screenshot_dir: Path,
    browser: Browser,
) -> None:
    app = make_game_app(**FAST_MATCHES)
    async with serve_app(app) as base_url:
        ids = await make_players(app, "alice")
        winning = await bot_match_at(app, ids["alice"], 3, WON_FOR_BOT)
        losing = await bot_match_at(app, ids["alice"], 1, LOST_FOR_BOT)
        context = await signed_in(browser, base_url, game_settings, app, mint, "alice")
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))

        await page.goto(f"{base_url}/ui/matches/{winning}")
        await expect(page.locator("#draw-hint")).to_be_hidden()
        await page.click("#offer-draw")
        await expect(page.locator("#draw-hint")).to_have_text(
            "Bot (Hard) declined your draw offer. "
            "You can offer another draw after 3 more moves of yours."
        )
        await expect(page.locator("#offer-draw")).to_be_disabled()
        await expect(page.locator("#match")).to_have_attribute("data-status", "active")
        await page.screenshot(path=str(screenshot_dir / "game-draw-bot-cooldown.png"))
        # After a reload the reason is the cooldown alone (the decline is not remembered).
        await page.reload()
        await expect(page.locator("#draw-hint")).to_have_text(
            "You can offer another draw after 3 more moves of yours."
        )
        await expect(page.locator("#offer-draw")).to_be_disabled()

        await page.goto(f"{base_url}/ui/matches/{losing}")
        await page.click("#offer-draw")
        await expect(page.locator("#status-line")).to_have_text("Draw: agreement.")
        await expect(page.locator("#offer-draw")).to_be_hidden()
        await expect(page.locator("#draw-hint")).to_be_hidden()
        await context.close()
    assert errors == []
