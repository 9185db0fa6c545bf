from __future__ import annotations

import httpx

from VEZEPyUniQVerse.app.main import create_app
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.tests.helpers import Running, with_changes


async def test_landing_page_introduces_the_three_services_without_auth(
    portal_client: httpx.AsyncClient,
) -> None:
    response = await portal_client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    for name in ("Portal", "Mail", "Game"):
        assert f">{name}</h3>" in page
    assert "you@vezeuniqverse.com" in page
    # Links come from the service registry (config/services.json defaults here).
    assert 'href="http://127.0.0.1:8004/ui/inbox"' in page
    assert 'href="http://127.0.0.1:8002/"' in page
    assert 'href="http://testserver/services"' in page
    assert "/static/core/veze.css" in page


async def test_landing_page_follows_service_overrides(
    portal_settings: PortalSettings, running: Running
) -> None:
    settings = with_changes(portal_settings, service_urls={"email": "https://mail.example.test"})
    async with running(create_app(settings)) as client:
        page = (await client.get("/")).text
    assert 'href="https://mail.example.test/ui/inbox"' in page


async def test_landing_page_escapes_configuration(
    portal_settings: PortalSettings, running: Running
) -> None:
    settings = with_changes(portal_settings, mail_domain="<script>alert(1)</script>.test")
    async with running(create_app(settings)) as client:
        page = (await client.get("/")).text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.test" in page


async def test_portal_stylesheet_is_served(portal_client: httpx.AsyncClient) -> None:
    response = await portal_client.get("/static/portal.css")
    assert response.status_code == 200
    assert ".hero" in response.text
