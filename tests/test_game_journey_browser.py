"""Issue 6's journey in a real browser: two players queue, are matched, play to a win; the
leaderboard and ratings change; the winner's summary mail arrives in webmail.

Portal, Game and Email run together on real ports of 127.0.0.1, wired as the Procfile wires
them; Debian's Chromium (Playwright) plays both sides from two browser contexts, each signed up
at the portal as a different person. Nothing is faked: provisioning creates the mailboxes and
player profiles, the matchmaker pairs the two tickets, the moves go through the board's script
and the match API, the ratings hook moves the ratings and the leaderboard, and the summary
worker gets its own token from the portal and files the mail through Email.

Screenshots go to `VEZE_SCREENSHOT_DIR` when it is set, else to the test's temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from VEZEPyCore.testing import free_port, serve_app
from VEZEPyEmail.app.main import create_app as create_email_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyGame.app.main import create_app as create_game_app
from VEZEPyGame.app.settings import GameSettings
from VEZEPyUniQVerse.app.main import create_app as create_portal_app
from VEZEPyUniQVerse.app.settings import PortalSettings

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "amber-falcon-meadow-58"
STEP_TIMEOUT_MS = 15_000
#: Provisioning and the summary mail run from queues: how long the test waits for each.
ARRIVAL_TIMEOUT_SECONDS = 20.0
#: The first player stacks four in column 0; the second answers in column 1 until it loses.
WINNING_COLUMN, LOSING_COLUMN = 0, 1

pytestmark = pytest.mark.timeout(120)


@dataclass(frozen=True)
class Services:
    portal: str
    email: str
    game: str


@dataclass
class Player:
    handle: str
    page: Page
    side: str = ""


@pytest.fixture
async def services(
    portal_settings: PortalSettings, email_settings: EmailSettings, game_settings: GameSettings
) -> AsyncIterator[Services]:
    ports = {name: free_port() for name in ("portal", "email", "game")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    shared = {"service_urls": dict(urls), "public_urls": dict(urls), "jwt_iss": urls["portal"]}
    by_jwks = {**shared, "jwks_url": f"{urls['portal']}/.well-known/jwks.json"}
    game = game_settings.model_copy(
        update={
            **by_jwks,
            # Two humans must meet: no bot takes a seat while the second one signs up.
            "matchmaker_bot_after_seconds": 600.0,
            "summary_mail_poll_seconds": 0.2,
        }
    )
    apps = {
        "portal": create_portal_app(portal_settings.model_copy(update=shared)),
        "email": create_email_app(email_settings.model_copy(update=by_jwks)),
        "game": create_game_app(game),
    }
    async with AsyncExitStack() as stack:
        for name, app in apps.items():
            await stack.enter_async_context(serve_app(app, port=ports[name]))
        yield Services(**urls)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is not installed (apt-get install chromium)")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    configured = os.environ.get("VEZE_SCREENSHOT_DIR")
    path = Path(configured) if configured else tmp_path / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


async def test_two_players_queue_play_to_a_win_and_the_winner_gets_the_summary_mail(
    services: Services, browser: Browser, screenshot_dir: Path
) -> None:
    players = []
    for _ in range(2):
        context = await browser.new_context()
        context.set_default_timeout(STEP_TIMEOUT_MS)
        players.append(Player("j" + secrets.token_hex(4), await context.new_page()))
    await asyncio.gather(*(sign_up_and_opt_in(p, services) for p in players))

    # A player holds no admin scope just by signing in (the portal grants it by role).
    refused = await players[0].page.goto(f"{services.game}/ui/admin/flags")
    assert refused is not None and refused.status == 403

    # Both see their rating at home, go to the lobby with "Play" and press "Find a ranked
    # match" (no bot box ticked: they wait for a person); the matchmaker pairs them.
    for player in players:
        await player.page.goto(f"{services.game}/ui")
        await expect(player.page.locator("#rating-ranked .rating-value")).to_have_text("1500")
        await player.page.click("#go-play")
        await expect(player.page.locator("#ranked-bot-fill")).not_to_be_checked()
        await player.page.click("#play-ranked")
        if player is players[0]:  # alone in the queue: the queue page waits with them
            state = player.page.locator("#queue-state")
            await expect(state).to_contain_text("Searching for an opponent")
    match_ids = await asyncio.gather(*(open_the_match(p) for p in players))
    assert match_ids[0] == match_ids[1]
    for player in players:
        player.side = await player.page.locator("#match").get_attribute("data-my-side") or ""
    first, second = sorted(players, key=lambda p: p.side != "first")
    assert (first.side, second.side) == ("first", "second")

    # They take turns, each waiting for the other's move to reach their board.
    for ply in range(7):
        mover, column = (first, WINNING_COLUMN) if ply % 2 == 0 else (second, LOSING_COLUMN)
        await expect(mover.page.locator("#match")).to_have_attribute("data-moves", str(ply))
        await mover.page.click(f"#board .board-column[data-column='{column}']")

    # The result shows on both boards.
    for player, text in ((first, "You won by four in a row."), (second, "You lost by four")):
        await expect(player.page.locator("#status-line")).to_contain_text(text)
        await expect(player.page.locator("#match")).to_have_attribute("data-status", "finished")
    await expect(first.page.locator("#board .cell.winning")).to_have_count(4)
    await first.page.screenshot(path=str(screenshot_dir / "journey-won.png"), full_page=True)

    # The leaderboard ranks the winner first, above the starting rating, the loser below it.
    board = first.page
    await board.goto(f"{services.game}/ui/leaderboard")
    await expect(board.locator("#my-rank")).to_contain_text("#1")
    rows = board.locator("#top-table tbody tr")
    await expect(rows).to_have_count(2)
    top = [(await rows.nth(i).locator("td").all_inner_texts()) for i in range(2)]
    assert [row[:2] for row in top] == [["1", first.handle], ["2", second.handle]]
    winner_rating, loser_rating = int(top[0][2]), int(top[1][2])
    assert winner_rating > 1500 > loser_rating
    assert top[0][3:5] == ["1", "0"] and top[1][3:5] == ["0", "1"]  # wins, losses
    await board.screenshot(path=str(screenshot_dir / "journey-leaderboard.png"), full_page=True)

    # The home pages show the same new ratings and the match among the recent ones.
    for player, rating, outcome in ((first, winner_rating, "Win"), (second, loser_rating, "Loss")):
        await player.page.goto(f"{services.game}/ui")
        value = player.page.locator("#rating-ranked .rating-value")
        await expect(value).to_have_text(str(rating))
        recent = player.page.locator("#recent-matches tbody tr").first
        await expect(recent).to_contain_text(outcome)

    # On a phone the loser's pages fit the screen: nothing scrolls sideways.
    phone = second.page
    await phone.set_viewport_size({"width": 390, "height": 844})
    for path in ("/ui", f"/ui/matches/{match_ids[0]}", "/ui/history", "/ui/profile", "/ui/queue"):
        await phone.goto(f"{services.game}{path}")
        overflow = await phone.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} is {overflow}px wider than a phone"

    # The winner's summary mail arrives in webmail.
    mail = first.page
    await mail.goto(f"{services.email}/ui/mail")
    subject = f"You won against {second.handle.title()}"  # the display name
    row = await wait_for_mail(mail, subject)
    await row.click()
    await expect(mail.locator("#reader-subject")).to_contain_text(subject)
    await expect(mail.locator("#mail-text")).to_contain_text(f"/ui/matches/{match_ids[0]}")
    await mail.screenshot(path=str(screenshot_dir / "journey-summary-mail.png"), full_page=True)


async def sign_up_and_opt_in(player: Player, services: Services) -> None:
    """Sign up at the portal, then switch on match summaries on the game's profile page."""
    page = player.page
    await page.goto(f"{services.portal}/signup")
    await page.fill("#handle", player.handle)
    await page.fill("#display_name", player.handle.title())
    await page.fill("#password", PASSWORD)
    await page.fill("#confirm", PASSWORD)
    await page.click("form[action$='/signup'] button[type=submit]")
    await page.wait_for_load_state()
    assert page.url.startswith(services.portal), page.url

    # The player profile is created by provisioning, from a queue: reload until it is there.
    button = page.locator("#summary-mail button[type=submit]")
    await reload_until(page, f"{services.game}/ui/profile", button, "a player profile")
    await expect(button).to_have_text("Mail me match summaries")
    await button.click()
    await expect(button).to_have_text("Stop match summaries")


async def open_the_match(player: Player) -> str:
    """The queue page opens the board by itself: live when the match is found while it waits,
    at once when it was found before the page loaded."""
    page = player.page
    await expect(page.locator("#match")).to_be_visible()
    found = re.search(r"/ui/matches/(\w+)$", page.url)
    assert found, page.url
    return found.group(1)


async def wait_for_mail(page: Page, subject: str) -> Locator:
    row = page.locator("#message-list .msg-row", has_text=subject)
    await reload_until(page, page.url, row, "the summary mail")
    return row


async def reload_until(page: Page, url: str, locator: Locator, what: str) -> None:
    """Open `url` until `locator` shows, for things delivered from a queue in the background."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ARRIVAL_TIMEOUT_SECONDS
    while True:
        await page.goto(url)
        try:
            await expect(locator).to_be_visible(timeout=1_000)
            return
        except AssertionError:
            if loop.time() > deadline:
                raise AssertionError(f"no {what} within {ARRIVAL_TIMEOUT_SECONDS}s") from None
