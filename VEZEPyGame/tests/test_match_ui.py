"""The game in a real browser: Debian's Chromium, driven by Playwright.

A signed-in player starts a bot match from the lobby, plays it to the end by clicking columns,
sees the result, then finds it in the history and steps through its replay. The sign-in is a
real signed session cookie of the game's single sign-on (the portal's part of sign-on is
covered by `tests/test_sso_browser.py`).

Screenshots go to `VEZE_SCREENSHOT_DIR` when it is set, else to the test's temporary folder.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from VEZEPyCore.testing import serve_app
from VEZEPyCore.web.sso import SsoSession, session_cookie_name
from VEZEPyGame.app.settings import GameSettings
from VEZEPyGame.tests.conftest import GameAppFactory
from VEZEPyGame.tests.match_support import FAST_MATCHES, Minter, make_players

STEP_TIMEOUT_MS = 15_000
#: The board offers a column, or the match is over.
READY_OR_OVER = """() => {
  const match = document.getElementById("match");
  return match.dataset.status === "finished"
    || document.querySelector(".board-column:not([disabled])") !== null;
}"""

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    configured = os.environ.get("VEZE_SCREENSHOT_DIR")
    path = Path(configured) if configured else tmp_path / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def session_cookie(
    settings: GameSettings, app_state: object, mint: Minter, handle: str = "alice"
) -> str:
    """A signed-in browser's session cookie value, as `/auth/callback` would have set it."""
    token = mint(
        f"sub-{handle}",
        audience="veze-game",
        scopes=("openid", "game.play"),
        ttl_seconds=900,
        preferred_username=handle,
    )
    session = SsoSession(
        access_token=token,
        refresh_token=None,
        expires_at=int(time.time()) + 900,
        sid=None,
        subject=f"sub-{handle}",
        handle=handle,
        email=f"{handle}@vezeuniqverse.com",
    )
    return str(app_state.sso.codec(settings).dump_session(session))  # type: ignore[attr-defined]


async def test_a_player_beats_or_loses_to_the_bot_in_the_browser(
    make_game_app: GameAppFactory,
    game_settings: GameSettings,
    mint: Minter,
    screenshot_dir: Path,
    browser: Browser,
) -> None:
    app = make_game_app(**FAST_MATCHES)
    async with serve_app(app) as base_url:
        await make_players(app, "alice")
        context = await browser.new_context(viewport={"width": 1100, "height": 900})
        context.set_default_timeout(STEP_TIMEOUT_MS)
        await context.add_cookies(
            [
                {
                    "name": session_cookie_name("game"),
                    "value": session_cookie(game_settings, app.state, mint),
                    "url": base_url,
                    "httpOnly": True,
                    "sameSite": "Lax",
                }
            ]
        )
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))

        await page.goto(f"{base_url}/ui/play")
        await expect(page.locator("#signed-in-as")).to_contain_text("alice")
        await page.screenshot(path=str(screenshot_dir / "game-lobby.png"), full_page=True)
        await page.click("#bot-level-1")
        await page.wait_for_url(f"{base_url}/ui/matches/*")
        match_url = page.url
        await expect(page.locator("#status-line")).to_contain_text("Your move")

        for _turn in range(22):
            await page.wait_for_function(READY_OR_OVER)
            if await page.get_attribute("#match", "data-status") == "finished":
                break
            before = await page.get_attribute("#match", "data-moves")
            enabled = await page.eval_on_selector_all(
                ".board-column:not([disabled])", "els => els.map(e => Number(e.dataset.column))"
            )
            column = min(enabled, key=lambda c: abs(c - 3))
            await page.click(f'.board-column[data-column="{column}"]')
            await page.wait_for_function(
                f'document.getElementById("match").dataset.moves !== "{before}"'
            )
            if _turn == 1:
                await page.screenshot(path=str(screenshot_dir / "game-match-playing.png"))
        await expect(page.locator("#match")).to_have_attribute("data-status", "finished")
        result = await page.text_content("#status-line") or ""
        assert result.startswith(("You won", "You lost", "Draw")), result
        await expect(page.locator("#replay-link")).to_be_visible()
        await expect(page.locator("#resign")).to_be_hidden()
        await page.screenshot(path=str(screenshot_dir / "game-match-finished.png"), full_page=True)

        # The match is in the history, and its replay steps back through the moves.
        await page.goto(f"{base_url}/ui/history")
        match_id = match_url.rsplit("/", 1)[1]
        await expect(page.locator(f'#history tr[data-match="{match_id}"]')).to_be_visible()
        await page.screenshot(path=str(screenshot_dir / "game-history.png"), full_page=True)
        await page.click(f'#history tr[data-match="{match_id}"] a')
        await page.wait_for_url(f"{base_url}/ui/matches/{match_id}/replay")
        total = await page.locator("#move-list li").count()
        await expect(page.locator("#replay-position")).to_have_text(f"Move {total} of {total}")
        stones = await page.locator("#board .cell.stone-first, #board .cell.stone-second").count()
        assert stones == total
        await page.click("#replay-back")
        await expect(page.locator("#replay-position")).to_have_text(f"Move {total - 1} of {total}")
        fewer = await page.locator("#board .cell.stone-first, #board .cell.stone-second").count()
        assert fewer == total - 1
        await page.screenshot(path=str(screenshot_dir / "game-replay.png"), full_page=True)
        await context.close()
    assert errors == []
