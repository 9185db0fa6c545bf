"""`/api/events` over a real socket: events from the in-process bus and from real Redis."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from VEZEPyCore.events import RedisBus
from VEZEPyCore.testing import next_event, serve_app, sse_events
from VEZEPyEmail.app.main import create_app
from VEZEPyEmail.app.settings import EmailSettings

ALICE = "alice@vezeuniqverse.com"


async def test_api_change_reaches_an_sse_client_via_in_process_bus(
    email_settings: EmailSettings, mint: Callable[..., str]
) -> None:
    app = create_app(email_settings.model_copy(update={"redis_url": None}))
    token = mint(ALICE)
    admin = {"Authorization": f"Bearer {mint('svc:portal', scopes=('email.admin',))}"}
    async with (
        serve_app(app) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as client,
    ):
        assert (
            await client.post("/api/mailboxes", json={"address": ALICE}, headers=admin)
        ).status_code == 201
        message_id = (
            await client.get("/api/messages", params={"user": ALICE, "access_token": token})
        ).json()["messages"][0]["id"]
        async with client.stream("GET", "/api/events", params={"access_token": token}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = sse_events(response)
            assert await next_event(events) == ("ready", {"user": ALICE})
            await client.post(
                f"/api/messages/{message_id}/read", headers={"Authorization": f"Bearer {token}"}
            )
            name, payload = await next_event(events)
    assert name == "message.updated"
    assert payload["id"] == message_id and payload["unread"] is False and payload["user"] == ALICE


async def test_event_published_through_real_redis_reaches_an_sse_client(
    email_settings: EmailSettings, mint: Callable[..., str], redis_url: str
) -> None:
    app = create_app(email_settings.model_copy(update={"redis_url": redis_url}))
    token = mint(ALICE)
    publisher = RedisBus.from_url(redis_url)  # another process's view of the same Redis
    try:
        async with (
            serve_app(app) as base_url,
            httpx.AsyncClient(base_url=base_url, timeout=10) as client,
        ):
            ready = await client.get("/ready")
            assert ready.json()["checks"]["redis"] == "ok"
            async with client.stream(
                "GET", "/api/events", params={"access_token": token}
            ) as response:
                events = sse_events(response)
                assert (await next_event(events))[0] == "ready"
                await publisher.publish(
                    f"email:events:{ALICE}", {"type": "message.created", "id": 77}
                )
                await publisher.publish(
                    "email:events:bob@vezeuniqverse.com", {"type": "message.created", "id": 78}
                )
                await publisher.publish(
                    f"email:events:{ALICE}", {"type": "message.updated", "id": 79}
                )
                first = await next_event(events)
                second = await next_event(events)
    finally:
        await publisher.close()
    assert first == ("message.created", {"type": "message.created", "id": 77})
    assert second[1]["id"] == 79  # bob's event never reached alice's stream


async def test_sse_refuses_another_users_stream(
    email_settings: EmailSettings, mint: Callable[..., str]
) -> None:
    app = create_app(email_settings)
    async with (
        serve_app(app) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as client,
    ):
        response = await client.get(
            "/api/events", params={"access_token": mint(ALICE), "user": "bob@vezeuniqverse.com"}
        )
        missing = await client.get("/api/events")
    assert response.status_code == 403
    assert missing.status_code == 401
