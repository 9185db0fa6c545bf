from __future__ import annotations

import httpx


async def test_health_names_the_service(game_client: httpx.AsyncClient) -> None:
    response = await game_client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["service"] == "game"


async def test_ready_reports_the_database(game_client: httpx.AsyncClient) -> None:
    response = await game_client.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == "ok"
    assert set(body["checks"].values()) == {"ok"}  # and Redis, when the run configures it


async def test_metrics_label_requests_by_route_template(game_client: httpx.AsyncClient) -> None:
    await game_client.get("/health")
    await game_client.get("/email/mail", params={"user": "alice@vezeuniqverse.com"})

    metrics = (await game_client.get("/metrics")).text
    assert "http_request_duration_seconds" in metrics
    assert 'route="/health"' in metrics
    # The 401 is counted under the template, and the query string never becomes a label.
    assert 'route="/email/mail",status="401"' in metrics
    assert "alice@" not in metrics
