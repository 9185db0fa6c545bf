from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from VEZEPyCore import __version__
from VEZEPyCore.db.engine import make_engine
from VEZEPyCore.db.migrations import downgrade, upgrade_to_head
from VEZEPyUniQVerse.app.main import MIGRATIONS
from VEZEPyUniQVerse.app.settings import PortalSettings


async def test_health_names_the_portal(portal_client: httpx.AsyncClient) -> None:
    response = await portal_client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "portal", "version": __version__}


async def test_ready_checks_the_database(portal_client: httpx.AsyncClient) -> None:
    response = await portal_client.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == "ok"


async def test_metrics_are_labelled_by_route_template(portal_client: httpx.AsyncClient) -> None:
    await portal_client.post("/provision/alice")  # 401, but it is still measured
    await portal_client.get("/health")
    metrics = await portal_client.get("/metrics")
    assert metrics.status_code == 200
    assert "http_request_duration_seconds_bucket" in metrics.text
    assert 'route="/provision/{x_user_id}"' in metrics.text
    assert 'status="401"' in metrics.text
    assert "/provision/alice" not in metrics.text  # raw paths would be unbounded labels


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))


async def test_migrations_create_and_drop_the_provisioning_table(
    portal_settings: PortalSettings,
) -> None:
    await upgrade_to_head(MIGRATIONS, portal_settings.db_url)
    engine = make_engine(portal_settings.db_url)
    try:
        assert "provisioning" in await _tables(engine)
        await asyncio.to_thread(downgrade, MIGRATIONS, portal_settings.db_url, "base")
        assert "provisioning" not in await _tables(engine)
    finally:
        await engine.dispose()
