"""The home page: the way in for visitors and players (play buttons, ratings, matches), and
the queue page handing a found match straight to the board."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from VEZEPyGame.services.matches.service import create_match
from VEZEPyGame.tests.competition_fixtures import (
    Minter,
    add_players,
    player_headers,
    session_cookie,
)
from VEZEPyGame.tests.conftest import GameAppFactory, Running
from VEZEPyUniQVerse.tests.provisioning_helpers import wait_for

QUIET = {"matchmaker_enabled": False}  # the queue stays as the test leaves it


def sign_in(client: httpx.AsyncClient, app: FastAPI, handle: str, mint: Minter) -> None:
    name, value = session_cookie(app, handle, mint)
    client.cookies.set(name, value)


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the page has no CSRF field"
    return match.group(1)


def rating_of(page: str, mode: str) -> int:
    match = re.search(
        rf'id="rating-{mode}">.*?<span class="rating-value">(\d+)</span>', page, re.DOTALL
    )
    assert match, f"no {mode} rating on the page"
    return int(match.group(1))


async def test_visitors_see_what_the_game_is_and_how_to_sign_in(
    make_game_app: GameAppFactory, running: Running
) -> None:
    app = make_game_app(
        service_urls={"portal": "https://portal.example", "email": "https://mail.example"}
    )
    async with running(app) as client:
        response = await client.get("/ui")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Four in a row wins" in response.text
    assert "not playable" not in response.text
    assert 'href="/auth/login?next=/ui"' in response.text
    assert 'href="https://portal.example"' in response.text
    assert 'href="https://mail.example/ui/inbox"' in response.text
    assert 'id="play-ranked"' not in response.text  # playing needs a sign-in


async def test_a_new_player_gets_the_play_buttons_and_the_starting_ratings(
    make_game_app: GameAppFactory, running: Running, mint: Minter
) -> None:
    app = make_game_app(**QUIET)
    async with running(app) as client:
        await add_players(app, "alice")
        sign_in(client, app, "alice", mint)
        home = await client.get("/ui")
        lobby = await client.get("/ui/play")
        joined = await client.post(
            "/ui/queue/join", data={"mode": "ranked", "csrf_token": csrf_of(lobby.text)}
        )
        status = await client.get("/api/queue", headers=player_headers(mint, "alice"))

    assert home.status_code == 200
    assert "Signed in as <strong>alice</strong>" in home.text
    # Home says where you stand and sends you to the lobby; the lobby starts games.
    assert 'id="go-play"' in home.text and 'id="play-ranked"' not in home.text
    for control in ("play-ranked", "play-casual", "bot-level-1", "bot-level-2", "bot-level-3"):
        assert f'id="{control}"' in lobby.text
    assert 'id="side-second"' in lobby.text  # the seat against the bot
    # Ranked asks before a bot may take the seat; casual offers it checked.
    assert re.search(r'id="ranked-bot-fill"(?![^>]*checked)', lobby.text)
    assert re.search(r'id="casual-bot-fill"[^>]*checked', lobby.text)
    # Each page one job: no results or ratings in the lobby, no play forms at home.
    assert 'id="my-ratings"' in home.text and 'id="my-ratings"' not in lobby.text
    assert "Recent results" not in lobby.text and "/ui/queue/join" not in home.text
    assert rating_of(home.text, "ranked") == 1500 and rating_of(home.text, "casual") == 1500
    assert "No finished matches yet" in home.text
    # One "Play" entry in the menu, and the home page is the current one.
    assert home.text.count('id="nav-play"') == 1 and ">Lobby<" not in home.text
    assert re.search(r'href="[^"]*/ui" aria-current="page">Game<', home.text)
    # The lobby's "Find a ranked match" form joins the ranked queue (no bot unless ticked).
    assert joined.status_code == 303 and joined.headers["location"].endswith("/ui/queue")
    assert status.json()["ticket"]["mode"] == "ranked"
    assert status.json()["ticket"]["bot_fill"] is False


async def test_after_a_ranked_match_the_home_page_shows_the_new_rating_and_the_result(
    make_game_app: GameAppFactory, running: Running, mint: Minter
) -> None:
    app = make_game_app(**QUIET)
    async with running(app) as client:
        alice, bob = await add_players(app, "alice", "bob<b>")
        async with app.state.sessionmaker() as session:
            match = await create_match(
                session, mode="ranked", first_player_id=alice, second_player_id=bob
            )
            await session.commit()
        sign_in(client, app, "alice", mint)
        running_page = await client.get("/ui")
        resigned = await client.post(
            f"/api/matches/{match.id}/resign", headers=player_headers(mint, "bob<b>")
        )
        finished_page = await client.get("/ui")

    assert f'data-match="{match.id}"' in running_page.text  # the way back to the board
    assert resigned.status_code == 200, resigned.text
    page = finished_page.text
    assert f'data-match="{match.id}"' not in page
    assert rating_of(page, "ranked") > 1500 and rating_of(page, "casual") == 1500
    assert "1 won · 0 lost" in page
    assert f'/ui/matches/{match.id}/replay"' in page
    assert "outcome-win" in page
    assert "bob&lt;b&gt;" in page and "bob<b>" not in page  # names are escaped


async def test_the_queue_page_opens_a_match_found_before_it_loaded(
    make_game_app: GameAppFactory, running: Running, mint: Minter
) -> None:
    app = make_game_app(matchmaker_bot_after_seconds=600)
    async with running(app) as client:
        await add_players(app, "alice", "bob")
        for handle in ("alice", "bob"):
            joined = await client.post(
                "/api/queue", json={"mode": "ranked"}, headers=player_headers(mint, handle)
            )
            assert joined.status_code == 201, joined.text

        async def matched() -> str | None:
            status = await client.get("/api/queue", headers=player_headers(mint, "alice"))
            ticket = status.json()["ticket"]
            return str(ticket["match_id"]) if ticket and ticket["match_id"] else None

        match_id = await wait_for(matched, what="the matchmaker pairing alice and bob")
        sign_in(client, app, "alice", mint)
        while_running = await client.get("/ui/queue")
        resigned = await client.post(
            f"/api/matches/{match_id}/resign", headers=player_headers(mint, "alice")
        )
        after = await client.get("/ui/queue")

    # The board opens at once instead of a notice to click through...
    assert while_running.status_code == 303
    assert while_running.headers["location"].endswith(f"/ui/matches/{match_id}")
    # ...but a finished match is not reopened: the page says what happened.
    assert resigned.status_code == 200, resigned.text
    assert after.status_code == 200 and "Match found" in after.text
