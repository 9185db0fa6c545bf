"""The queue, leaderboard and profile pages: over HTTP with a signed-in session, and the
queue in a real browser (Debian's Chromium via Playwright) from joining to the match page."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, expect

from VEZEPyCore.testing import serve_app
from VEZEPyGame.services.matches.service import create_match
from VEZEPyGame.services.ratings.service import apply_match_result
from VEZEPyGame.tests.competition_fixtures import (
    QUIET,
    FakeMatch,
    Minter,
    RecordingStart,
    add_players,
    competition_app,
    player_headers,
    session_cookie,
)
from VEZEPyGame.tests.conftest import GameAppFactory, Running


@pytest.fixture
async def app(make_game_app: GameAppFactory) -> FastAPI:
    return competition_app(make_game_app(**QUIET), start_match=RecordingStart())


@pytest.fixture
async def client(app: FastAPI, running: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with running(app) as client:
        yield client


def sign_in(client: httpx.AsyncClient, app: FastAPI, handle: str, mint: Minter) -> None:
    name, value = session_cookie(app, handle, mint)
    client.cookies.set(name, value)


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the page has no CSRF field"
    return match.group(1)


async def play(app: FastAPI, match: FakeMatch) -> None:
    async with app.state.sessionmaker() as session:
        await apply_match_result(
            session, match, leaderboards=app.state.leaderboards, season_days=30
        )
        await session.commit()


async def test_pages_need_a_session(client: httpx.AsyncClient) -> None:
    for path in ("/ui/queue", "/ui/leaderboard", "/ui/profile"):
        response = await client.get(path, headers={"accept": "text/html"})
        assert response.status_code == 303
        assert response.headers["location"].startswith("/auth/login")


async def test_join_and_leave_the_queue_from_the_page(
    app: FastAPI, client: httpx.AsyncClient, mint: Minter
) -> None:
    await add_players(app, "alice")
    sign_in(client, app, "alice", mint)
    page = await client.get("/ui/queue")
    assert page.status_code == 200 and "Not in a queue" in page.text
    forged = await client.post("/ui/queue/join", data={"mode": "casual"})
    joined = await client.post(
        "/ui/queue/join", data={"mode": "casual", "csrf_token": csrf_of(page.text)}
    )
    waiting = await client.get("/ui/queue")
    again = await client.post(
        "/ui/queue/join", data={"mode": "ranked", "csrf_token": csrf_of(waiting.text)}
    )
    status = await client.get("/api/queue", headers=player_headers(mint, "alice"))
    left = await client.post("/ui/queue/cancel", data={"csrf_token": csrf_of(waiting.text)})
    after = await client.get("/ui/queue")

    assert forged.status_code == 403  # no CSRF token: refused
    assert joined.status_code == 303
    assert "Searching for an opponent" in waiting.text and 'id="leave-queue"' in waiting.text
    assert again.headers["location"].endswith("?error=already-queued")
    assert status.json()["ticket"]["mode"] == "casual"
    assert left.status_code == 303
    assert "Not in a queue" in after.text


async def test_leaderboard_and_profile_pages_show_the_counted_games(
    app: FastAPI, client: httpx.AsyncClient, mint: Minter
) -> None:
    alice, bob, eve = await add_players(app, "alice", "bob", "eve<script>")
    await play(app, FakeMatch(alice, bob, "first"))
    await play(app, FakeMatch(bob, alice, "second"))
    await play(app, FakeMatch(eve, bob, "draw"))
    sign_in(client, app, "alice", mint)
    board = await client.get("/ui/leaderboard")
    profile = await client.get("/ui/profile")
    casual = await client.get("/ui/profile?mode=casual")

    assert board.status_code == 200
    assert 'id="top-table"' in board.text
    assert "You are <strong>#1</strong>" in board.text
    assert "eve&lt;script&gt;" in board.text and "eve<script>" not in board.text
    assert profile.status_code == 200
    assert '<svg class="chart" id="rating-chart"' in profile.text
    assert profile.text.count('<circle class="dot"') == 3  # the start and two games
    assert 'id="history-table"' in profile.text and ">win<" in profile.text
    assert 'id="no-history"' in casual.text


@pytest.mark.timeout(120)
async def test_the_queue_page_opens_the_match_when_one_is_found(
    make_game_app: GameAppFactory, mint: Minter, tmp_path: Path, browser: Browser
) -> None:
    shots = Path(os.environ.get("VEZE_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    # The real match service starts the match; the loop pairs on the second ticket's wake-up.
    app = make_game_app(matchmaker_poll_seconds=30, matchmaker_bot_after_seconds=0)
    async with (
        serve_app(app) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as api,
    ):
        alice, bob = await add_players(app, "alice", "bob")
        # Draws between equals: both keep 1500, inside each other's first window.
        await play(app, FakeMatch(alice, bob, "draw"))
        await play(app, FakeMatch(bob, alice, "draw"))
        context = await browser.new_context(viewport={"width": 1100, "height": 800})
        context.set_default_timeout(15_000)
        name, value = session_cookie(app, "alice", mint)
        await context.add_cookies(
            [{"name": name, "value": value, "url": base_url, "httpOnly": True, "sameSite": "Lax"}]
        )
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))

        await page.goto(f"{base_url}/ui/profile")
        await expect(page.locator("#rating-chart")).to_be_visible()
        await page.screenshot(path=str(shots / "game-profile.png"), full_page=True)
        await page.goto(f"{base_url}/ui/leaderboard")
        await expect(page.locator("#my-rank")).to_contain_text("#2")  # tied: higher id first
        await page.screenshot(path=str(shots / "game-leaderboard.png"), full_page=True)

        await page.goto(f"{base_url}/ui/queue")
        await page.click("#join-queue")
        await expect(page.locator("#queue-state")).to_contain_text("Searching")
        await page.wait_for_function(
            "() => Number(document.getElementById('q-pool').textContent) === 1"
        )
        await page.screenshot(path=str(shots / "game-queue.png"), full_page=True)
        joined = await api.post("/api/queue", json={}, headers=player_headers(mint, "bob"))
        assert joined.status_code == 201
        await page.wait_for_url(f"{base_url}/ui/matches/*")
        match_id = page.url.rsplit("/", 1)[-1]
        ticket = (await api.get("/api/queue", headers=player_headers(mint, "bob"))).json()
    assert ticket["ticket"]["match_id"] == match_id
    assert errors == []


async def test_a_player_in_a_running_match_is_sent_back_to_it(
    app: FastAPI, client: httpx.AsyncClient, mint: Minter
) -> None:
    alice, bob = await add_players(app, "alice", "bob")
    async with app.state.sessionmaker() as session:
        await create_match(session, mode="casual", first_player_id=alice, second_player_id=bob)
        await session.commit()
    sign_in(client, app, "alice", mint)
    page = await client.get("/ui/queue")
    joined = await client.post(
        "/ui/queue/join", data={"mode": "ranked", "csrf_token": csrf_of(page.text)}
    )
    shown = await client.get(joined.headers["location"])
    assert joined.headers["location"].endswith("?error=in-match")
    assert "Finish your running match first" in shown.text
