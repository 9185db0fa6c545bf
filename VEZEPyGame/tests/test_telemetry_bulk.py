"""`POST /telemetry/bulk`: limits, schema, durable storage, fair-play flags and the admin view."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from VEZEPyGame.app.main import create_app
from VEZEPyGame.app.settings import GameSettings
from VEZEPyGame.db.telemetry import FairPlayFlag, TelemetryEvent
from VEZEPyGame.tests.conftest import Running
from VEZEPyGame.tests.store_helpers import Minter, create_players, metric, player_token

MATCH = uuid.uuid4().hex
LIMITS = {
    "telemetry_max_events": 20,
    "telemetry_max_bytes": 4096,
    "telemetry_batches_per_minute": 4,
    "telemetry_flood_events_per_minute": 30,
    "telemetry_min_move_ms": 150,
    "telemetry_abandon_threshold": 3,
}


@pytest.fixture
def telemetry_app(game_settings: GameSettings, request: pytest.FixtureRequest) -> FastAPI:
    overrides = getattr(request, "param", {})  # indirect parametrisation
    return create_app(game_settings.model_copy(update={**LIMITS, **overrides}))


@pytest.fixture
async def client(
    telemetry_app: FastAPI, running: Running, mint: Minter
) -> AsyncIterator[httpx.AsyncClient]:
    async with running(telemetry_app) as client:
        await create_players(client, mint, "alice", "bob")
        yield client


def at(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def move(think_ms: int, *, ts: float = 0, column: int = 3) -> dict[str, Any]:
    return {"type": "move", "ts": at(ts), "match_id": MATCH, "column": column, "think_ms": think_ms}


async def send(
    client: httpx.AsyncClient, mint: Minter, events: list[dict[str, Any]], handle: str = "alice"
) -> httpx.Response:
    return await client.post(
        "/telemetry/bulk", json={"events": events}, headers=player_token(mint, handle)
    )


async def stored(app: FastAPI) -> int:
    async with app.state.sessionmaker() as session:
        return int(await session.scalar(select(func.count(TelemetryEvent.id))) or 0)


async def flags(app: FastAPI) -> list[tuple[str, str]]:
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            select(FairPlayFlag.rule, FairPlayFlag.detail).order_by(FairPlayFlag.id)
        )
        return [(rule, detail) for rule, detail in rows]


async def test_a_valid_batch_is_stored_with_its_payload_and_flags_nothing(
    client: httpx.AsyncClient, telemetry_app: FastAPI, mint: Minter
) -> None:
    events = [
        {"type": "page_view", "ts": at(-3), "path": "/ui/store"},
        {"type": "queue_join", "ts": at(-2), "mode": "ranked"},
        move(900, ts=-1),
        {"type": "client_error", "ts": at(0), "message": "socket closed"},
    ]
    response = await send(client, mint, events)
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 4
    async with telemetry_app.state.sessionmaker() as session:
        rows = (await session.scalars(select(TelemetryEvent).order_by(TelemetryEvent.id))).all()
    assert [row.type for row in rows] == ["page_view", "queue_join", "move", "client_error"]
    assert rows[2].payload == {"match_id": MATCH, "column": 3, "think_ms": 900}
    assert rows[2].match_id == MATCH
    assert {row.batch_id for row in rows} == {response.json()["batch_id"]}
    assert await flags(telemetry_app) == []


@pytest.mark.parametrize("telemetry_app", [{"telemetry_batches_per_minute": 100}], indirect=True)
async def test_oversized_and_invalid_batches_are_refused_and_store_nothing(
    client: httpx.AsyncClient, telemetry_app: FastAPI, mint: Minter
) -> None:
    alice = player_token(mint, "alice")
    big = json.dumps({"events": [move(500)] * 40}).encode()
    assert len(big) > LIMITS["telemetry_max_bytes"]
    too_big = await client.post(
        "/telemetry/bulk", content=big, headers={**alice, "Content-Type": "application/json"}
    )

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: read up to the limit only
        for _ in range(10):
            yield b" " * 1000

    chunked = await client.post("/telemetry/bulk", content=chunks(), headers=alice)
    too_many = await send(client, mint, [move(500)] * 21)
    unknown_type = await send(client, mint, [{"type": "teleport", "ts": at(0)}])
    naive_ts = await send(client, mint, [{"type": "page_view", "ts": "2026-01-01T00:00:00"}])
    extra_field = await send(client, mint, [{**move(500), "cheat": True}])
    bad_column = await send(client, mint, [move(500, column=9)])
    empty = await send(client, mint, [])

    assert too_big.status_code == 413 and too_big.json()["error"] == "payload_too_large"
    assert chunked.status_code == 413
    assert too_many.status_code == 413
    for response in (unknown_type, naive_ts, extra_field, bad_column, empty):
        assert response.status_code == 422, response.text
    assert await stored(telemetry_app) == 0
    unauthenticated = await client.post("/telemetry/bulk", json={"events": [move(500)]})
    assert unauthenticated.status_code == 401


async def test_a_flood_of_batches_is_limited_per_player_and_flagged(
    client: httpx.AsyncClient, telemetry_app: FastAPI, mint: Minter
) -> None:
    for _ in range(LIMITS["telemetry_batches_per_minute"]):
        assert (await send(client, mint, [move(500)])).status_code == 202
    refused = await send(client, mint, [move(500)])
    refused_again = await send(client, mint, [move(500)])
    bob = await send(client, mint, [move(500)], handle="bob")

    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused_again.status_code == 429
    assert bob.status_code == 202  # the budget is per player
    assert await stored(telemetry_app) == LIMITS["telemetry_batches_per_minute"] + 1
    assert [rule for rule, _ in await flags(telemetry_app)] == ["flood"]
    assert await metric(client, "veze_fair_play_flags_total", rule="flood") == 1
    refusals = "veze_telemetry_batches_refused_total"
    assert await metric(client, refusals, reason="rate_limited") == 2
    assert await metric(client, "veze_telemetry_events_total", type="move") == 5


async def test_too_many_events_in_a_minute_is_a_flood(
    client: httpx.AsyncClient, telemetry_app: FastAPI, mint: Minter
) -> None:
    batch = [move(500, ts=-20 + i * 0.5) for i in range(20)]
    assert (await send(client, mint, batch)).status_code == 202
    assert await flags(telemetry_app) == []
    assert (await send(client, mint, batch[:11])).status_code == 202
    ((rule, detail),) = await flags(telemetry_app)
    assert rule == "flood" and detail.startswith("31 events in one minute")


async def test_impossible_timing_is_flagged_once_per_match(
    client: httpx.AsyncClient, telemetry_app: FastAPI, mint: Minter
) -> None:
    assert (await send(client, mint, [move(40, ts=-2), move(35, ts=-1)])).status_code == 202
    assert (await send(client, mint, [move(20)])).status_code == 202
    backwards = [
        {"type": "page_view", "ts": at(-1), "path": "/ui"},
        {"type": "page_view", "ts": at(-60), "path": "/ui/store"},
    ]
    assert (await send(client, mint, backwards)).status_code == 202
    found = await flags(telemetry_app)
    assert [rule for rule, _ in found] == ["impossible_timing", "impossible_timing"]
    assert found[0][1].startswith("a move in 40 ms")
    assert "out of order" in found[1][1]
    async with telemetry_app.state.sessionmaker() as session:
        match_ids = set(await session.scalars(select(FairPlayFlag.match_id)))
    assert match_ids == {MATCH, None}


async def test_repeated_abandon_and_requeue_is_flagged_and_admins_see_it(
    client: httpx.AsyncClient, telemetry_app: FastAPI, mint: Minter
) -> None:
    leave = {"type": "queue_leave", "ts": at(-3), "mode": "ranked"}
    abandon = {"type": "match_abandon", "ts": at(-1), "match_id": MATCH}
    assert (await send(client, mint, [leave, abandon])).status_code == 202
    assert await flags(telemetry_app) == []
    assert (await send(client, mint, [leave])).status_code == 202
    assert (await send(client, mint, [abandon])).status_code == 202  # same hour: one flag
    assert [rule for rule, _ in await flags(telemetry_app)] == ["abandon_requeue"]

    admin = player_token(mint, "root", "game.admin")
    listed = await client.get("/api/admin/flags", headers=admin)
    assert listed.status_code == 200, listed.text
    (flag,) = listed.json()["flags"]
    assert flag["handle"] == "alice" and flag["rule"] == "abandon_requeue"
    assert "3 abandoned matches or queue exits" in flag["detail"]
    by_bob = await client.get("/api/admin/flags", params={"player": "bob"}, headers=admin)
    assert by_bob.json() == {"flags": []}
    by_rule = await client.get("/api/admin/flags", params={"rule": "flood"}, headers=admin)
    assert by_rule.json() == {"flags": []}
    bad_rule = await client.get("/api/admin/flags", params={"rule": "x"}, headers=admin)
    assert bad_rule.status_code == 422
    not_admin = await client.get("/api/admin/flags", headers=player_token(mint, "alice"))
    assert not_admin.status_code == 403


async def test_an_admin_resolves_or_dismisses_a_flag_once_and_the_trail_stays(
    client: httpx.AsyncClient, telemetry_app: FastAPI, mint: Minter
) -> None:
    leave = {"type": "queue_leave", "ts": at(-3), "mode": "ranked"}
    abandon = {"type": "match_abandon", "ts": at(-1), "match_id": MATCH}
    for batch in ([leave, abandon], [leave], [abandon]):
        assert (await send(client, mint, batch)).status_code == 202
    admin = player_token(mint, "root", "game.admin")
    (flag,) = (await client.get("/api/admin/flags", headers=admin)).json()["flags"]
    assert flag["status"] == "open" and flag["reviewed_by"] is None
    url = f"/api/admin/flags/{flag['id']}/review"

    by_player = await client.post(
        url, json={"decision": "dismissed"}, headers=player_token(mint, "alice")
    )
    bad = await client.post(url, json={"decision": "deleted"}, headers=admin)
    long_note = await client.post(
        url, json={"decision": "resolved", "note": "x" * 501}, headers=admin
    )
    missing = await client.post(
        "/api/admin/flags/999999/review", json={"decision": "resolved"}, headers=admin
    )
    resolved = await client.post(
        url, json={"decision": "resolved", "note": "  warned <b>alice</b>  "}, headers=admin
    )
    again = await client.post(url, json={"decision": "dismissed"}, headers=admin)
    still_open = await client.get("/api/admin/flags", params={"status": "open"}, headers=admin)
    closed = await client.get("/api/admin/flags", params={"status": "resolved"}, headers=admin)

    assert by_player.status_code == 403
    assert bad.status_code == 422 and long_note.status_code == 422
    assert missing.status_code == 404
    assert resolved.status_code == 200, resolved.text
    body = resolved.json()
    assert (body["status"], body["reviewed_by"], body["review_note"]) == (
        "resolved",
        "root",
        "warned <b>alice</b>",
    )
    assert datetime.fromisoformat(body["reviewed_at"]) > datetime.now(UTC) - timedelta(minutes=5)
    assert again.status_code == 409 and again.json()["error"] == "flag_reviewed"
    assert still_open.json() == {"flags": []}
    assert [f["id"] for f in closed.json()["flags"]] == [flag["id"]]
    assert closed.json()["flags"][0]["reviewed_by"] == "root"  # the first decision stands
