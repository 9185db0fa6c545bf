"""End to end: two players queue over HTTP, the background matchmaker pairs them, the match
service creates their match, they play it out, and ratings and leaderboard move once."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import redis

from VEZEPyGame.services.matchmaking.worker import player_channel
from VEZEPyGame.tests.competition_fixtures import Minter, add_players, player_headers
from VEZEPyGame.tests.conftest import GameAppFactory, Running


async def wait_for_match(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    async with asyncio.timeout(15):
        while True:
            ticket = (await client.get("/api/queue", headers=headers)).json()["ticket"]
            if ticket["status"] == "matched":
                return str(ticket["match_id"])
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("store", ["sql", "redis"])
async def test_queue_match_play_rate_and_rank(
    make_game_app: GameAppFactory,
    running: Running,
    mint: Minter,
    redis_url: str,
    prefix: str,
    store: str,
) -> None:
    app = make_game_app(
        redis_url=redis_url if store == "redis" else None,
        matchmaker_poll_seconds=0.2,
        matchmaker_bot_after_seconds=0,
        leaderboard_redis_prefix=prefix,
    )
    async with running(app) as client:
        ids = await add_players(app, "alice", "bob")
        alice, bob = player_headers(mint, "alice"), player_headers(mint, "bob")
        async with app.state.bus.subscribe(player_channel(ids[0])) as events:
            assert (await client.post("/api/queue", json={}, headers=alice)).status_code == 201
            assert (await client.post("/api/queue", json={}, headers=bob)).status_code == 201
            match_id = await wait_for_match(client, alice)
            kinds: dict[str, str] = {}
            async with asyncio.timeout(10):
                while set(kinds) != {"match.found", "match.started"}:
                    received = await events.get(10)
                    assert received is not None
                    kinds[received[1]["type"]] = received[1]["match_id"]
        assert set(kinds.values()) == {match_id}  # the queue's and the match service's events
        assert await wait_for_match(client, bob) == match_id

        match = (await client.get(f"/api/matches/{match_id}", headers=alice)).json()
        assert match["mode"] == "ranked" and match["status"] == "active"
        busy = await client.post("/api/queue", json={}, headers=alice)
        assert busy.status_code == 409  # still playing: no second match at the same time
        first = alice if match["first"]["handle"] == "alice" else bob
        second = bob if first is alice else alice
        winner = "alice" if first is alice else "bob"
        for _ in range(3):  # the first player builds a column, the second plays beside it
            assert (
                await client.post(
                    f"/api/matches/{match_id}/moves", json={"column": 0}, headers=first
                )
            ).status_code == 200
            assert (
                await client.post(
                    f"/api/matches/{match_id}/moves", json={"column": 1}, headers=second
                )
            ).status_code == 200
        won = await client.post(f"/api/matches/{match_id}/moves", json={"column": 0}, headers=first)
        assert won.json()["status"] == "finished", won.text
        late = await client.post(f"/api/matches/{match_id}/resign", headers=second)
        assert late.status_code == 409  # over already: no second result, no second rating

        ratings = {
            handle: {r["mode"]: r for r in (await client.get("/api/ratings/me", headers=h)).json()}
            for handle, h in (("alice", alice), ("bob", bob))
        }
        loser = "bob" if winner == "alice" else "alice"
        assert ratings[winner]["ranked"]["rating"] > 1500 > ratings[loser]["ranked"]["rating"]
        assert ratings[winner]["ranked"]["games"] == ratings[loser]["ranked"]["games"] == 1
        history = (await client.get("/api/ratings/me/history", headers=alice)).json()
        assert [h["match_id"] for h in history] == [match_id]
        board = (await client.get("/api/leaderboards/ranked", headers=alice)).json()
        assert [(e["rank"], e["handle"], e["games"]) for e in board["entries"]] == [
            (1, winner, 1),
            (2, loser, 1),
        ]
        if store == "redis":
            client_redis = redis.Redis.from_url(redis_url)
            try:
                [key] = client_redis.keys(f"{prefix}:*:ranked")
                assert client_redis.zcard(key) == 2  # copied after the commit, not rebuilt
            finally:
                client_redis.close()


async def test_a_lone_ticket_gets_a_bot_match_from_the_match_service(
    make_game_app: GameAppFactory, running: Running, mint: Minter
) -> None:
    app = make_game_app(matchmaker_poll_seconds=0.2, matchmaker_bot_after_seconds=0.5)
    async with running(app) as client:
        await add_players(app, "alice")
        alice = player_headers(mint, "alice")
        joined = await client.post(
            "/api/queue", json={"mode": "ranked", "bot_fill": True}, headers=alice
        )
        assert joined.status_code == 201
        match_id = await wait_for_match(client, alice)
        ticket = (await client.get("/api/queue", headers=alice)).json()["ticket"]
        match = (await client.get(f"/api/matches/{match_id}", headers=alice)).json()
    assert ticket["bot_level"] == 2 and ticket["mode"] == "ranked"  # 1500: the medium bot
    assert match["mode"] == "bot" and match["second"]["bot_level"] == 2
