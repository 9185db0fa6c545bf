"""The store's pages answer people, not scripts: refusals are pages with a reason."""

from __future__ import annotations

from fastapi import FastAPI

from VEZEPyCore.web.sso import session_cookie_name
from VEZEPyGame.app.settings import GameSettings
from VEZEPyGame.tests.conftest import Running
from VEZEPyGame.tests.store_helpers import Minter, create_players
from VEZEPyGame.tests.test_store_pages import session_cookie


async def test_pages_say_why_they_refuse(
    game_app: FastAPI, game_settings: GameSettings, running: Running, mint: Minter
) -> None:
    async with running(game_app) as client:
        await create_players(client, mint, "bob")

        def signed_in(handle: str, *scopes: str) -> dict[str, str]:
            value = session_cookie(game_settings, game_app.state, mint, handle, scopes)
            return {"Cookie": f"{session_cookie_name('game')}={value}"}

        bob = signed_in("bob", "openid", "game.play")
        flags = await client.get("/ui/admin/flags", headers=bob)
        store = await client.get("/ui/store", headers=bob)
        carol = signed_in("carol", "openid", "game.play")  # no player profile yet
        no_player = await client.get("/ui/inventory", headers=carol)

    assert flags.status_code == 403
    assert "text/html" in flags.headers["content-type"]
    assert "for administrators of the game" in flags.text
    assert store.status_code == 200 and "Buy Crimson discs" in store.text
    assert no_player.status_code == 404
    assert "No player profile yet" in no_player.text
