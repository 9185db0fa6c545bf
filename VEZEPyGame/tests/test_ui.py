from __future__ import annotations

import httpx

from VEZEPyGame.tests.conftest import GameAppFactory, Running


async def test_home_page_is_honest_and_links_to_the_portal(
    make_game_app: GameAppFactory, running: Running
) -> None:
    app = make_game_app(
        service_urls={"portal": "https://portal.example", "email": "https://mail.example"}
    )
    async with running(app) as client:
        response = await client.get("/ui")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "The game is coming" in response.text
    assert "not playable yet" in response.text
    assert 'href="https://portal.example"' in response.text
    assert 'href="https://mail.example/ui/inbox"' in response.text


async def test_bare_host_redirects_to_the_home_page(game_client: httpx.AsyncClient) -> None:
    response = await game_client.get("/")
    assert response.status_code == 303
    assert response.headers["location"] == "http://testserver/ui"
