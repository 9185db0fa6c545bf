from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from VEZEPyCore import __version__
from VEZEPyCore.testing import serve_app
from VEZEPyEmail.app.main import create_app as create_email_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyUniQVerse.app.main import create_app
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.tests.helpers import Running, dead_url, serve_stalled, with_changes


@asynccontextmanager
async def serve_email(settings: EmailSettings) -> AsyncIterator[str]:
    async with serve_app(create_email_app(settings)) as url:
        yield url


def by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {service["name"]: service for service in body["services"]}


def card(page: str, name: str) -> str:
    """The HTML of one service's card on the Helm page."""
    match = re.search(rf'<article[^>]*id="service-{name}".*?</article>', page, re.DOTALL)
    assert match is not None, f"no card for {name}"
    return match.group(0)


async def test_directory_shows_a_live_service_up_and_a_dead_one_down(
    portal_settings: PortalSettings, email_settings: EmailSettings, running: Running
) -> None:
    game_url = dead_url()
    async with serve_email(email_settings) as email_url:
        settings = with_changes(
            portal_settings, service_urls={"email": email_url, "game": game_url}
        )
        async with running(create_app(settings)) as client:
            api = await client.get("/api/services")
            page = await client.get("/services")

    assert api.status_code == 200
    services = by_name(api.json())
    assert list(services) == ["portal", "game", "email"]  # the registry's order
    email, game, portal = services["email"], services["game"], services["portal"]
    assert (email["status"], email["version"], email["url"]) == ("up", __version__, email_url)
    assert email["title"] == "Mail" and email["description"]
    assert isinstance(email["latency_ms"], int)
    assert (game["status"], game["url"]) == ("down", game_url)
    assert "ConnectError" in game["detail"]
    assert (portal["status"], portal["version"]) == ("up", __version__)

    assert page.status_code == 200
    assert "2 of 3 services are up" in page.text
    assert 'data-status="up"' in card(page.text, "email")
    assert f'href="{email_url}"' in card(page.text, "email")
    assert 'data-status="down"' in card(page.text, "game")


async def test_a_service_that_never_answers_is_slow_and_does_not_hold_the_page(
    portal_settings: PortalSettings, running: Running
) -> None:
    failing = FastAPI()

    @failing.get("/health")
    async def unhealthy() -> JSONResponse:
        return JSONResponse({"status": "broken"}, status_code=503)

    async with serve_stalled() as stalled_url, serve_app(failing) as failing_url:
        settings = with_changes(
            portal_settings,
            service_urls={"game": stalled_url, "email": failing_url},
            health_timeout_seconds=0.3,
        )
        async with running(create_app(settings)) as client:
            api = await client.get("/api/services")
            page = await client.get("/services")

    services = by_name(api.json())
    assert services["game"]["status"] == "slow"
    assert "0.3s" in services["game"]["detail"]
    assert services["email"]["status"] == "down"
    assert "503" in services["email"]["detail"]
    assert page.status_code == 200
    assert 'data-status="slow"' in card(page.text, "game")


async def test_environment_overrides_pick_the_url(
    portal_settings: PortalSettings,
    email_settings: EmailSettings,
    running: Running,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with serve_email(email_settings) as email_url:
        # VEZE_SERVICE_<NAME> beats <NAME>_BASE_URL, which points at nothing here.
        monkeypatch.setenv("VEZE_SERVICE_EMAIL", email_url + "/")
        monkeypatch.setenv("EMAIL_BASE_URL", dead_url())
        settings = PortalSettings(**portal_settings.model_dump(exclude={"service_urls"}))
        async with running(create_app(settings)) as client:
            email = by_name((await client.get("/api/services")).json())["email"]
    assert (email["url"], email["status"]) == (email_url, "up")
