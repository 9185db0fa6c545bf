"""The header bell's streams are counted: `veze_sse_clients_connected{stream="notifications"}`.

The portal on a real port (Email and Game unreachable: the stream opens all the same and says
nothing is live); a person signs up through the form and opens the stream with the session
cookie, as the browser's EventSource does.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import httpx

from VEZEPyCore.testing import free_port, serve_app
from VEZEPyUniQVerse.app.main import create_app
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.services.notifications.sse import read_events
from VEZEPyUniQVerse.tests.helpers import dead_url
from VEZEPyUniQVerse.tests.hub_support import Platform, sign_up
from VEZEPyUniQVerse.tests.test_metrics import sample, scrape

WAIT_SECONDS = 20.0
GAUGE = "veze_sse_clients_connected"


async def open_streams(portal: httpx.AsyncClient) -> float:
    return sample(await scrape(portal), GAUGE, stream="notifications")


async def test_notification_streams_are_counted_while_open(
    portal_settings: PortalSettings,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    others = {"email": dead_url(), "game": dead_url()}
    app = create_app(
        portal_settings.model_copy(
            update={
                "service_urls": {"portal": url, **others},
                "public_urls": {"portal": url, **others},
                "jwt_iss": url,
            }
        )
    )
    async with (
        serve_app(app, port=port),
        AsyncExitStack() as stack,
        httpx.AsyncClient(base_url=url, timeout=20.0) as anonymous,
    ):
        plat = Platform(portal=url, email=others["email"], game=others["game"], portal_app=app,
                        email_app=None)  # fmt: skip
        person = await sign_up(stack, plat, "bell", wait_for=())
        assert await open_streams(anonymous) == 0

        refused = await anonymous.get("/notifications/stream")
        assert refused.status_code == 401
        assert await open_streams(anonymous) == 0  # a refused stream is never counted

        async with person.client.stream("GET", "/notifications/stream") as first:
            assert first.status_code == 200
            events = read_events(first)
            async with asyncio.timeout(WAIT_SECONDS):
                assert (await anext(events)).event == "status"
            assert await open_streams(anonymous) == 1
            async with person.client.stream("GET", "/notifications/stream") as second:
                assert second.status_code == 200
                # Held in a name: a dropped reader would close its stream when collected.
                more = read_events(second)
                async with asyncio.timeout(WAIT_SECONDS):
                    assert (await anext(more)).event == "status"
                assert await open_streams(anonymous) == 2
        # Both tabs closed: the server sees the disconnects and the gauge comes back down.
        async with asyncio.timeout(WAIT_SECONDS):
            while await open_streams(anonymous) != 0:
                await asyncio.sleep(0.05)
