"""The game's domain metrics move with real matches and a real matchmaker pass."""

from __future__ import annotations

import asyncio
import re

import httpx

from VEZEPyCore.testing import next_event, serve_app, sse_events
from VEZEPyGame.tests.competition_fixtures import Minter, add_players, player_headers
from VEZEPyGame.tests.conftest import GameAppFactory, Running


def sample(metrics: str, name: str, **labels: str) -> float:
    """The value of one series in Prometheus text output (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    pattern = rf"^{re.escape(name)}(?:\{{{re.escape(wanted)}\}})? ([0-9.e+-]+)$"
    match = re.search(pattern, metrics, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return response.text


async def test_bot_match_start_and_resignation_are_counted(
    make_game_app: GameAppFactory, running: Running, mint: Minter
) -> None:
    app = make_game_app(matchmaker_enabled=False)
    async with running(app) as client:
        await add_players(app, "alice")
        alice = player_headers(mint, "alice")
        before = await scrape(client)
        assert sample(before, "veze_matches_started_total", mode="bot") == 0
        created = await client.post("/api/matches", json={"bot_level": 1}, headers=alice)
        assert created.status_code == 201, created.text
        match_id = created.json()["id"]
        resigned = await client.post(f"/api/matches/{match_id}/resign", headers=alice)
        assert resigned.status_code == 200, resigned.text
        after = await scrape(client)
    assert sample(after, "veze_matches_started_total", mode="bot") == 1
    # Alice moves first against the bot and resigns: the second seat (the bot) wins.
    assert sample(after, "veze_matches_finished_total", mode="bot", result="second") == 1
    assert sample(after, "veze_matches_started_total", mode="ranked") == 0


async def test_queue_size_and_wait_follow_the_matchmaker(
    make_game_app: GameAppFactory, running: Running, mint: Minter
) -> None:
    # The loop is off: this test runs the pairing pass itself, after looking at the queue.
    app = make_game_app(matchmaker_enabled=False, matchmaker_bot_after_seconds=300)
    async with running(app) as client:
        await add_players(app, "alice", "bob")
        for handle in ("alice", "bob"):
            joined = await client.post(
                "/api/queue", json={"mode": "casual"}, headers=player_headers(mint, handle)
            )
            assert joined.status_code == 201, joined.text
        queued = await scrape(client)
        assert sample(queued, "veze_matchmaking_queue_size", mode="casual") == 2
        assert sample(queued, "veze_matchmaking_oldest_wait_seconds", mode="casual") >= 0
        started = await app.state.matchmaker.run_pass()
        assert len(started) == 1
        matched = await scrape(client)
    assert sample(matched, "veze_matchmaking_queue_size", mode="casual") == 0
    assert sample(matched, "veze_matchmaking_wait_seconds_count", mode="casual") == 2
    assert sample(matched, "veze_matches_started_total", mode="casual") == 1


async def test_open_queue_streams_are_counted_while_connected(
    make_game_app: GameAppFactory, mint: Minter
) -> None:
    app = make_game_app(matchmaker_enabled=False)
    async with serve_app(app) as base_url, httpx.AsyncClient(base_url=base_url, timeout=10) as api:
        await add_players(app, "alice")
        headers = player_headers(mint, "alice")
        async with api.stream("GET", "/api/queue/events", headers=headers) as stream:
            events = sse_events(stream)  # held: dropping it would close the response
            assert (await next_event(events))[0] == "status"
            text = await scrape(api)
            assert sample(text, "veze_sse_clients_connected", stream="queue") == 1
        # The client left: the count drops once the server notices (bounded wait, no sleep).
        async with asyncio.timeout(10):
            while sample(await scrape(api), "veze_sse_clients_connected", stream="queue"):
                await asyncio.sleep(0.05)
