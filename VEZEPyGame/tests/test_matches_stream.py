"""`GET /api/matches/{id}/events` over real sockets: both players see each move, a flag falls
with nobody moving, and two workers sharing Redis and a database stream each other's moves."""

from __future__ import annotations

import time
from contextlib import AsyncExitStack

import httpx
from fastapi import FastAPI

from VEZEPyCore.testing import next_event, serve_app, sse_events
from VEZEPyGame.services.matches.clock import TimeControl
from VEZEPyGame.tests.conftest import GameAppFactory
from VEZEPyGame.tests.match_support import (
    FAST_MATCHES,
    Minter,
    make_players,
    player_headers,
    start_match,
)


async def test_both_players_see_each_move_within_a_second(
    make_game_app: GameAppFactory, mint: Minter
) -> None:
    app = make_game_app(**FAST_MATCHES, redis_url=None)
    alice, bob = player_headers(mint, "alice"), player_headers(mint, "bob")
    async with (
        serve_app(app) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as client,
    ):
        ids = await make_players(app, "alice", "bob", "carol")
        match_id = await start_match(app, first=ids["alice"], second=ids["bob"])
        url = f"/api/matches/{match_id}/events"
        async with (
            client.stream("GET", url, headers=alice) as alice_stream,
            client.stream("GET", url, headers=bob) as bob_stream,
        ):
            assert alice_stream.status_code == 200
            assert alice_stream.headers["content-type"].startswith("text/event-stream")
            alice_events, bob_events = sse_events(alice_stream), sse_events(bob_stream)
            first = await next_event(alice_events)
            assert first[0] == "state" and first[1]["moves"] == []
            assert (await next_event(bob_events))[0] == "state"

            sent = time.monotonic()
            response = await client.post(
                f"/api/matches/{match_id}/moves", json={"column": 3}, headers=alice
            )
            assert response.status_code == 200
            seen_by_bob = await next_event(bob_events, seconds=5)
            seen_by_alice = await next_event(alice_events, seconds=5)
            delay = time.monotonic() - sent
            forbidden = await client.get(url, headers=player_headers(mint, "carol"))
            await client.post(f"/api/matches/{match_id}/resign", headers=bob)
            finished = await next_event(alice_events)
        # Once finished, anyone signed in may watch: the stream sends the state and ends.
        async with client.stream("GET", url, headers=player_headers(mint, "carol")) as watch:
            watched = [event async for event in sse_events(watch)]
    assert seen_by_bob[0] == seen_by_alice[0] == "match.move"
    assert seen_by_bob[1]["moves"] == [3] and seen_by_bob[1]["to_move"] == "second"
    assert seen_by_bob[1]["board"][5][3] == 1
    assert delay < 1.0
    assert finished[0] == "match.finished" and finished[1]["end_reason"] == "resign"
    assert forbidden.status_code == 404  # not a player of this running match
    assert [name for name, _ in watched] == ["state"]
    assert watched[0][1]["status"] == "finished"


async def test_the_stream_ends_a_match_on_time_with_nobody_moving(
    make_game_app: GameAppFactory, mint: Minter
) -> None:
    # The sweeper is off (300 s): only the stream's own deadline can notice the flag.
    app = make_game_app(**FAST_MATCHES, redis_url=None)
    async with (
        serve_app(app) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as client,
    ):
        ids = await make_players(app, "alice", "bob")
        match_id = await start_match(
            app,
            first=ids["alice"],
            second=ids["bob"],
            # Long enough that a busy machine opens the stream before the flag falls.
            time_control=TimeControl(initial_ms=3000, increment_ms=0),
        )
        async with client.stream(
            "GET", f"/api/matches/{match_id}/events", headers=player_headers(mint, "bob")
        ) as stream:
            events = sse_events(stream)
            first = await next_event(events)
            assert first[1]["status"] == "active"
            name, state = await next_event(events, seconds=10)
    assert name in ("state", "match.finished")
    assert (state["status"], state["result"], state["end_reason"]) == (
        "finished",
        "second",
        "timeout",
    )
    assert state["clock"]["first_ms"] == 0


async def test_two_workers_share_moves_through_redis(
    make_game_app: GameAppFactory, mint: Minter, redis_url: str
) -> None:
    # Two apps on one database and one Redis: two uvicorn workers, as far as matches can tell.
    worker_a = make_game_app(**FAST_MATCHES, redis_url=redis_url)
    worker_b: FastAPI = make_game_app(**FAST_MATCHES, redis_url=redis_url)
    alice, bob = player_headers(mint, "alice"), player_headers(mint, "bob")
    async with AsyncExitStack() as stack:
        url_a = await stack.enter_async_context(serve_app(worker_a))
        url_b = await stack.enter_async_context(serve_app(worker_b))
        client_a = await stack.enter_async_context(httpx.AsyncClient(base_url=url_a, timeout=10))
        client_b = await stack.enter_async_context(httpx.AsyncClient(base_url=url_b, timeout=10))
        ids = await make_players(worker_a, "alice", "bob")
        match_id = await start_match(worker_a, first=ids["alice"], second=ids["bob"])
        stream = await stack.enter_async_context(
            client_a.stream("GET", f"/api/matches/{match_id}/events", headers=bob)
        )
        events = sse_events(stream)
        assert (await next_event(events))[0] == "state"
        moved = await client_b.post(
            f"/api/matches/{match_id}/moves", json={"column": 0}, headers=alice
        )
        assert moved.status_code == 200
        name, state = await next_event(events, seconds=2)
        # Bob answers through worker A; alice's next move through B is then legal.
        answered = await client_a.post(
            f"/api/matches/{match_id}/moves", json={"column": 1}, headers=bob
        )
        assert answered.status_code == 200
        reply = await next_event(events, seconds=2)
    assert name == "match.move" and state["moves"] == [0]
    assert reply[1]["moves"] == [0, 1]
