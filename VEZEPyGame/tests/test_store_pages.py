"""The store, inventory, board cosmetics and fair-play flags pages in a real browser.

Debian's Chromium driven by Playwright, signed in with a real session cookie of the game's
single sign-on (as in test_match_ui.py). The provider's webhook is sent by the test, signed
as a provider would. Screenshots go to `VEZE_SCREENSHOT_DIR` when set, else a temporary folder.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect
from pydantic import SecretStr
from sqlalchemy import select

from VEZEPyCore.testing import serve_app
from VEZEPyCore.web.sso import SsoSession, session_cookie_name
from VEZEPyGame.app.settings import GameSettings
from VEZEPyGame.db.models import Player
from VEZEPyGame.db.store import Purchase
from VEZEPyGame.db.telemetry import TelemetryEvent
from VEZEPyGame.services.matches.service import create_match
from VEZEPyGame.tests.conftest import GameAppFactory
from VEZEPyGame.tests.store_helpers import (
    WEBHOOK_SECRET,
    Minter,
    create_players,
    player_token,
    post_webhook,
    webhook_event,
)
from VEZEPyUniQVerse.tests.provisioning_helpers import wait_for

STEP_TIMEOUT_MS = 15_000

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    configured = os.environ.get("VEZE_SCREENSHOT_DIR")
    path = Path(configured) if configured else tmp_path / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def session_cookie(
    settings: GameSettings,
    app_state: object,
    mint: Minter,
    handle: str = "alice",
    scopes: tuple[str, ...] = ("openid", "game.play", "game.admin"),
) -> str:
    """A signed-in session cookie (alice holds the admin role's `game.admin` too)."""
    token = mint(
        f"sub-{handle}",
        audience="veze-game",
        scopes=scopes,
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


async def test_buy_equip_and_see_cosmetics_on_the_board_and_flags_as_admin(
    make_game_app: GameAppFactory,
    game_settings: GameSettings,
    mint: Minter,
    screenshot_dir: Path,
    browser: Browser,
) -> None:
    app = make_game_app(store_webhook_secret=SecretStr(WEBHOOK_SECRET))
    async with (
        serve_app(app) as base_url,
        httpx.AsyncClient(base_url=base_url) as api,
    ):
        await create_players(api, mint, "alice", "bob")
        context = await browser.new_context(viewport={"width": 1200, "height": 900})
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

        # The store: buy a disc colour; it waits for the provider.
        await page.goto(f"{base_url}/ui/store")
        await expect(page.locator("#signed-in-as")).to_contain_text("alice")
        await expect(page.locator("#store-pieces .item-card")).to_have_count(4)
        await page.click("text=Buy Crimson discs")
        await expect(page.locator("#purchase-started")).to_be_visible()
        await expect(page.locator("#purchases")).to_contain_text("pending")
        await page.screenshot(path=str(screenshot_dir / "game-store.png"), full_page=True)
        async with app.state.sessionmaker() as session:
            reference = await session.scalar(select(Purchase.provider_ref))
        assert reference is not None
        await expect(page.locator("#purchase-started code")).to_have_text(reference)

        paid = await post_webhook(
            api, webhook_event("evt_ui", "payment.succeeded", reference, amount_cents=199)
        )
        assert paid.status_code == 200, paid.text

        # The inventory: the paid item is there; equip it and the preview wears it.
        await page.goto(f"{base_url}/ui/inventory")
        await expect(page.locator("#current-look")).to_contain_text("Discs: Default")
        await page.click("text=Equip Crimson discs")
        await expect(page.locator("#current-look")).to_contain_text("Discs: Crimson discs")
        preview = await page.get_attribute("#board-preview", "style")
        assert preview is not None and "--piece: #c0172f" in preview
        await page.screenshot(path=str(screenshot_dir / "game-inventory.png"), full_page=True)

        # Queueing and leaving are reported for the abandon/requeue rule.
        await page.goto(f"{base_url}/ui/queue")
        await page.select_option("#queue-mode", "casual")
        await page.click("#join-queue")
        await page.click("#leave-queue")
        await expect(page.locator("#join-queue")).to_be_visible()

        async def queue_events() -> list[tuple[str, object]] | None:
            async with app.state.sessionmaker() as session:
                rows = await session.execute(
                    select(TelemetryEvent.type, TelemetryEvent.payload)
                    .where(TelemetryEvent.type.in_(("queue_join", "queue_leave")))
                    .order_by(TelemetryEvent.id)
                )
                found = [(kind, payload.get("mode")) for kind, payload in rows]
            return found if len(found) == 2 else None

        assert await wait_for(queue_events, what="queue telemetry") == [
            ("queue_join", "casual"),
            ("queue_leave", "casual"),
        ]

        # The board: alice's stones are crimson for her (and for bob, who wears nothing).
        async with app.state.sessionmaker() as session:
            ids = {p.handle: p.id for p in await session.scalars(select(Player))}
            match = await create_match(
                session, mode="casual", first_player_id=ids["bob"], second_player_id=ids["alice"]
            )
            await session.commit()
        await page.goto(f"{base_url}/ui/matches/{match.id}")
        style = await page.get_attribute("#match", "style")
        assert style is not None
        assert "--stone-second: #c0172f" in style and "--stone-first: #f2c230" in style
        colour = await page.eval_on_selector(
            "#board", "el => getComputedStyle(el).getPropertyValue('--stone-second').trim()"
        )
        assert colour == "#c0172f"
        await page.screenshot(path=str(screenshot_dir / "game-board-cosmetics.png"))
        resigned = await api.post(
            f"/api/matches/{match.id}/resign", headers=player_token(mint, "alice")
        )
        assert resigned.status_code == 200, resigned.text
        await page.goto(f"{base_url}/ui/matches/{match.id}/replay")
        replay_style = await page.get_attribute("#replay", "style")
        assert replay_style is not None and "--stone-second: #c0172f" in replay_style

        # Fair play: a superhuman move is flagged and the admin page lists it.
        batch = {
            "events": [
                {
                    "type": "move",
                    "ts": "2026-11-27T07:00:00+00:00",
                    "match_id": match.id,
                    "column": 3,
                    "think_ms": 12,
                }
            ]
        }
        sent = await api.post("/telemetry/bulk", json=batch, headers=player_token(mint, "bob"))
        assert sent.status_code == 202, sent.text
        await page.goto(f"{base_url}/ui/admin/flags")
        await expect(page.locator("#flags tbody tr")).to_have_count(1)
        await expect(page.locator("#flags")).to_contain_text("a move in 12 ms")
        await expect(page.locator("#flags")).to_contain_text("bob")
        # Dismissed with a note: who, when and why stay on the row.
        await page.fill("#flags tbody tr input[name=note]", "lag spike <i>on</i> bob's side")
        await page.click("#flags tbody tr button[value=dismissed]")
        row = page.locator("#flags tbody tr").first
        await expect(row).to_have_attribute("data-status", "dismissed")
        await expect(row.locator(".reviewer")).to_have_text("alice")
        await expect(row.locator(".review-note")).to_have_text("lag spike <i>on</i> bob's side")
        await expect(row.locator("form")).to_have_count(0)
        await page.screenshot(path=str(screenshot_dir / "game-admin-flags.png"), full_page=True)
        await page.select_option("#rule", "flood")
        await page.click("text=Filter")
        await expect(page.locator(".empty")).to_contain_text("No flags match the filter")

        # Match-summary mail is opt-in, switched on the profile page.
        await page.goto(f"{base_url}/ui/profile")
        await expect(page.locator("#summary-mail")).to_contain_text("Off")
        await page.click("text=Mail me match summaries")
        await expect(page.locator("#summary-mail")).to_contain_text("On")
        await page.locator("#summary-mail").screenshot(
            path=str(screenshot_dir / "game-summary-mail-switch.png")
        )
        async with app.state.sessionmaker() as session:
            alice = await session.scalar(select(Player).where(Player.handle == "alice"))
        assert alice is not None and alice.mail_opt_in is True

        # Telemetry from the pages: a move on the board goes out with its thinking time.
        async with app.state.sessionmaker() as session:
            bot_match = await create_match(
                session,
                mode="bot",
                first_player_id=ids["alice"],
                second_player_id=None,
                bot_level=1,
            )
            await session.commit()
        await page.goto(f"{base_url}/ui/matches/{bot_match.id}")
        await page.wait_for_timeout(200)  # the player looks at the board before moving
        await page.click('.board-column[data-column="3"]')
        await expect(page.locator("#match")).to_have_attribute("data-moves", re.compile("[12]"))
        await page.evaluate("window.vezeTelemetry.flush(false)")

        async def move_stored() -> TelemetryEvent | None:
            async with app.state.sessionmaker() as session:
                event: TelemetryEvent | None = await session.scalar(
                    select(TelemetryEvent).where(
                        TelemetryEvent.type == "move", TelemetryEvent.match_id == bot_match.id
                    )
                )
            return event

        move = await wait_for(move_stored, what="the move's telemetry")
        assert move.payload["column"] == 3 and move.payload["think_ms"] >= 200
        async with app.state.sessionmaker() as session:
            views = set(
                await session.scalars(
                    select(TelemetryEvent.payload["path"].as_string()).where(
                        TelemetryEvent.type == "page_view"
                    )
                )
            )
        assert f"/ui/matches/{bot_match.id}" in views

        assert errors == []
