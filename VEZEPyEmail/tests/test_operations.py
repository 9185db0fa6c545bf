from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
from fastapi import FastAPI

from VEZEPyCore.testing import free_port
from VEZEPyEmail.app.main import create_app
from VEZEPyEmail.app.settings import EmailSettings


async def test_health_ready_and_metrics_by_route_template(email_client: httpx.AsyncClient) -> None:
    health = await email_client.get("/health")
    assert health.json()["status"] == "ok" and health.json()["service"] == "email"
    assert health.headers["x-request-id"]
    ready = await email_client.get("/ready")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"

    await email_client.get("/api/messages/12345/row")  # a 401 with a raw path
    metrics = (await email_client.get("/metrics")).text
    assert 'route="/api/messages/{message_id}/row"' in metrics
    assert "/api/messages/12345/row" not in metrics
    assert 'route="/health",status="200"' in metrics


async def test_request_id_is_echoed_when_sane(email_client: httpx.AsyncClient) -> None:
    kept = await email_client.get("/health", headers={"X-Request-ID": "abc-123"})
    replaced = await email_client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert kept.headers["x-request-id"] == "abc-123"
    assert replaced.headers["x-request-id"] != "bad id\twith spaces"


async def test_ready_reports_an_unreachable_redis(
    email_settings: EmailSettings,
    running: Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]],
) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(email_settings.model_copy(update={"redis_url": dead_redis}))
    async with running(app) as client:
        ready = await client.get("/ready")
        health = await client.get("/health")
    assert ready.status_code == 503
    assert ready.json()["status"] == "not_ready"
    assert ready.json()["checks"]["redis"].startswith("error")
    assert ready.json()["checks"]["database"] == "ok"
    assert health.status_code == 200  # alive, just not ready
