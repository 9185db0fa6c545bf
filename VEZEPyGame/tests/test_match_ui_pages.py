"""The game pages without a browser: who sees what, forms need the CSRF token, resume links."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from VEZEPyCore.web.sso import SsoSession, session_cookie_name
from VEZEPyGame.app.settings import GameSettings
from VEZEPyGame.tests.conftest import GameAppFactory, Running
from VEZEPyGame.tests.match_support import FAST_MATCHES, Minter, make_players, start_match


@pytest.fixture
def app(make_game_app: GameAppFactory) -> FastAPI:
    return make_game_app(**FAST_MATCHES)


@pytest.fixture
async def client(app: FastAPI, running: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with running(app) as client:
        yield client


def sign_in(
    client: httpx.AsyncClient, app: FastAPI, settings: GameSettings, mint: Minter, handle: str
) -> None:
    """Give the client the game's signed session cookie for `handle`."""
    token = mint(
        f"sub-{handle}", audience="veze-game", scopes=("game.play",), preferred_username=handle
    )
    session = SsoSession(
        access_token=token,
        refresh_token=None,
        expires_at=int(time.time()) + 300,
        sid=None,
        subject=f"sub-{handle}",
        handle=handle,
        email=None,
    )
    client.cookies.set(
        session_cookie_name("game"), app.state.sso.codec(settings).dump_session(session)
    )


async def test_pages_resume_running_matches_and_hide_other_players_matches(
    app: FastAPI, client: httpx.AsyncClient, game_settings: GameSettings, mint: Minter
) -> None:
    ids = await make_players(app, "alice", "bob", "carol")
    match_id = await start_match(app, first=ids["alice"], second=ids["bob"], mode="ranked")
    sign_in(client, app, game_settings, mint, "alice")
    lobby = await client.get("/ui/play")
    assert lobby.status_code == 200
    assert f'href="http://testserver/ui/matches/{match_id}"' in lobby.text
    assert "Return to your ranked match against bob" in lobby.text
    board = await client.get(f"/ui/matches/{match_id}")
    assert board.status_code == 200 and 'data-my-side="first"' in board.text
    history = await client.get("/ui/history")
    assert f'data-match="{match_id}"' in history.text

    sign_in(client, app, game_settings, mint, "carol")
    hidden = await client.get(f"/ui/matches/{match_id}")
    assert hidden.status_code == 404 and "Match not found" in hidden.text
    assert match_id not in (await client.get("/ui/history")).text

    sign_in(client, app, game_settings, mint, "nobody")
    assert (await client.get("/ui/play")).status_code == 404


async def test_the_bot_form_needs_the_csrf_token_and_opens_the_match(
    app: FastAPI, client: httpx.AsyncClient, game_settings: GameSettings, mint: Minter
) -> None:
    await make_players(app, "alice")
    sign_in(client, app, game_settings, mint, "alice")
    lobby = await client.get("/ui/play")
    token = re.search(r'name="csrf_token" value="([^"]+)"', lobby.text)
    assert token is not None
    forged = await client.post("/ui/play/bot", data={"bot_level": "3"})
    assert forged.status_code == 403
    started = await client.post(
        "/ui/play/bot", data={"bot_level": "3", "csrf_token": token.group(1)}
    )
    assert started.status_code == 303
    assert re.fullmatch(r"http://testserver/ui/matches/[0-9a-f]{32}", started.headers["location"])
    page = await client.get(started.headers["location"])
    assert "Bot (Hard)" in page.text


async def test_pages_send_visitors_to_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.get("/ui/play")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/auth/login?next=%2Fui%2Fplay")


async def test_the_lobby_says_when_too_many_bot_matches_run(
    app: FastAPI, client: httpx.AsyncClient, game_settings: GameSettings, mint: Minter
) -> None:
    ids = await make_players(app, "alice")
    for _ in range(3):
        await start_match(app, first=ids["alice"], second=None, mode="bot", bot_level=1)
    sign_in(client, app, game_settings, mint, "alice")
    lobby = await client.get("/ui/play")
    token = re.search(r'name="csrf_token" value="([^"]+)"', lobby.text)
    assert token is not None
    refused = await client.post(
        "/ui/play/bot", data={"bot_level": "1", "csrf_token": token.group(1)}
    )
    assert refused.status_code == 303
    assert refused.headers["location"] == "http://testserver/ui/play?error=too-many"
    page = await client.get(refused.headers["location"])
    assert 'id="too-many"' in page.text
    assert page.text.count("Return to your bot match") == 3
