"""Matches over the API: bot games, two-player games, refusals, resignation, clocks, hooks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyCore.errors import BadRequest
from VEZEPyGame.db.matches import Match, MatchMove
from VEZEPyGame.services.matches import service
from VEZEPyGame.services.matches.clock import TimeControl
from VEZEPyGame.services.matches.events import player_channel
from VEZEPyGame.services.matches.tasks import sweep_once
from VEZEPyGame.tests.conftest import GameAppFactory, Running
from VEZEPyGame.tests.match_support import (
    FAST_MATCHES,
    Minter,
    load_match,
    make_players,
    player_headers,
    start_match,
)


@pytest.fixture
def app(make_game_app: GameAppFactory) -> FastAPI:
    return make_game_app(**FAST_MATCHES)


@pytest.fixture
async def client(app: FastAPI, running: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with running(app) as client:
        yield client


@pytest.fixture
async def ids(app: FastAPI, client: httpx.AsyncClient) -> dict[str, int]:
    return await make_players(app, "alice", "bob", "carol")


@pytest.fixture
def alice(mint: Minter) -> dict[str, str]:
    return player_headers(mint, "alice")


@pytest.fixture
def bob(mint: Minter) -> dict[str, str]:
    return player_headers(mint, "bob")


@pytest.fixture
def carol(mint: Minter) -> dict[str, str]:
    return player_headers(mint, "carol")


async def move(
    client: httpx.AsyncClient, match_id: str, column: int, headers: dict[str, str]
) -> httpx.Response:
    return await client.post(
        f"/api/matches/{match_id}/moves", json={"column": column}, headers=headers
    )


async def test_a_bot_match_is_played_to_the_end_and_lands_in_history(
    client: httpx.AsyncClient, ids: dict[str, int], alice: dict[str, str]
) -> None:
    created = await client.post("/api/matches", json={"bot_level": 1}, headers=alice)
    assert created.status_code == 201, created.text
    state = created.json()
    match_id = state["id"]
    assert state["mode"] == "bot" and state["status"] == "active"
    assert state["first"]["handle"] == "alice" and state["second"]["bot_level"] == 1
    assert state["to_move"] == "first" and state["clock"]["running"] == "first"

    plies = 0
    while state["status"] == "active":
        legal = [column for column in range(7) if state["board"][0][column] == 0]
        # Stack the centre-most free column: the easy bot blunders into letting it win.
        column = min(legal, key=lambda c: abs(c - 3))
        response = await move(client, match_id, column, alice)
        assert response.status_code == 200, response.text
        after = response.json()
        # The answer already holds the bot's reply (unless the player's move ended it).
        assert len(after["moves"]) in (len(state["moves"]) + 1, len(state["moves"]) + 2)
        if after["status"] == "active":
            assert len(after["moves"]) == len(state["moves"]) + 2
            assert after["to_move"] == "first"
        state = after
        plies += 1
        assert plies <= 21

    assert state["result"] in ("first", "second", "draw")
    assert state["end_reason"] in ("four_in_a_row", "draw")
    if state["result"] == "first":
        assert state["winner_player_id"] == ids["alice"] and state["winning_cells"]
    elif state["result"] == "second":
        assert state["winner_player_id"] is None  # the bot has no player id

    history = (await client.get("/api/matches", headers=alice)).json()["matches"]
    assert [entry["id"] for entry in history] == [match_id]
    expected = {"first": "win", "second": "loss", "draw": "draw"}[state["result"]]
    assert history[0]["outcome"] == expected and history[0]["opponent"] == "Bot (Easy)"

    replay = (await client.get(f"/api/matches/{match_id}/replay", headers=alice)).json()
    assert [m["column"] for m in replay["moves"]] == state["moves"]
    assert [m["side"] for m in replay["moves"][:2]] == ["first", "second"]
    assert replay["moves"][0]["player_id"] == ids["alice"]
    assert replay["moves"][1]["player_id"] is None
    # Clocks count down and get the increment back: never above the start plus one increment
    # for each of that side's moves so far.
    clock = state["clock"]
    for ply, recorded in enumerate(replay["moves"]):
        own_moves = ply // 2 + 1
        assert 0 < recorded["clock_ms"] <= clock["initial_ms"] + own_moves * clock["increment_ms"]

    again = await move(client, match_id, 0, alice)
    assert again.status_code == 409
    assert again.json()["error"] == "game_over"


async def test_illegal_moves_are_refused_with_a_reason(
    app: FastAPI,
    client: httpx.AsyncClient,
    ids: dict[str, int],
    alice: dict[str, str],
    bob: dict[str, str],
) -> None:
    match_id = await start_match(app, first=ids["alice"], second=ids["bob"])
    out_of_range = await move(client, match_id, 7, alice)
    assert out_of_range.status_code == 400
    assert out_of_range.json()["error"] == "column_out_of_range"

    not_yours = await move(client, match_id, 3, bob)
    assert not_yours.status_code == 409
    assert not_yours.json()["error"] == "not_your_turn"

    for turn in range(6):
        response = await move(client, match_id, 2, alice if turn % 2 == 0 else bob)
        assert response.status_code == 200, response.text
    full = await move(client, match_id, 2, alice)
    assert full.status_code == 409
    assert full.json() == {"error": "column_full", "detail": "column 2 is full"}

    too_big = await move(client, match_id, 10_000, alice)
    assert too_big.status_code == 422  # bounded before the rules even look

    match = await load_match(app, match_id)
    assert match.move_count == 6  # nothing refused was stored


async def test_only_the_players_see_and_play_an_active_match(
    app: FastAPI,
    client: httpx.AsyncClient,
    ids: dict[str, int],
    alice: dict[str, str],
    bob: dict[str, str],
    carol: dict[str, str],
) -> None:
    match_id = await start_match(app, first=ids["alice"], second=ids["bob"], mode="ranked")
    assert (await client.get(f"/api/matches/{match_id}", headers=carol)).status_code == 404
    assert (await move(client, match_id, 3, carol)).status_code == 404
    resign = await client.post(f"/api/matches/{match_id}/resign", headers=carol)
    assert resign.status_code == 404
    assert (await client.get(f"/api/matches/{'0' * 32}", headers=alice)).status_code == 404
    assert (await client.get("/api/matches/not-an-id", headers=alice)).status_code == 404
    assert (await client.get(f"/api/matches/{match_id}")).status_code == 401

    for turn, column in enumerate([0, 1, 0, 1, 0, 1, 0]):
        response = await move(client, match_id, column, alice if turn % 2 == 0 else bob)
        assert response.status_code == 200, response.text
    final = response.json()
    assert final["status"] == "finished" and final["result"] == "first"
    assert final["end_reason"] == "four_in_a_row" and final["winner_player_id"] == ids["alice"]
    assert sorted(map(tuple, final["winning_cells"])) == [(0, 0), (0, 1), (0, 2), (0, 3)]
    assert final["clock"]["running"] is None

    # Finished matches may be watched and replayed by anyone signed in, but not played.
    watched = await client.get(f"/api/matches/{match_id}", headers=carol)
    assert watched.status_code == 200 and watched.json()["moves"] == [0, 1, 0, 1, 0, 1, 0]
    replay = await client.get(f"/api/matches/{match_id}/replay", headers=carol)
    assert replay.status_code == 200 and len(replay.json()["moves"]) == 7
    assert (await move(client, match_id, 3, carol)).status_code == 404
    assert (await client.get("/api/matches", headers=carol)).json() == {"matches": []}
    bobs = (await client.get("/api/matches", headers=bob)).json()["matches"]
    assert bobs[0]["outcome"] == "loss" and bobs[0]["your_side"] == "second"


async def test_resigning_hands_the_win_to_the_opponent_even_out_of_turn(
    app: FastAPI,
    client: httpx.AsyncClient,
    ids: dict[str, int],
    alice: dict[str, str],
    bob: dict[str, str],
) -> None:
    match_id = await start_match(app, first=ids["alice"], second=ids["bob"])
    response = await client.post(f"/api/matches/{match_id}/resign", headers=bob)
    assert response.status_code == 200, response.text
    state = response.json()
    assert (state["status"], state["result"], state["end_reason"]) == (
        "finished",
        "first",
        "resign",
    )
    assert state["winner_player_id"] == ids["alice"]
    twice = await client.post(f"/api/matches/{match_id}/resign", headers=alice)
    assert twice.status_code == 409 and twice.json()["error"] == "game_over"


async def test_concurrent_moves_for_the_same_turn_store_exactly_one(
    app: FastAPI, client: httpx.AsyncClient, ids: dict[str, int], alice: dict[str, str]
) -> None:
    match_id = await start_match(app, first=ids["alice"], second=ids["bob"])
    responses = await asyncio.gather(*(move(client, match_id, c, alice) for c in (0, 3, 6)))
    codes = sorted(response.status_code for response in responses)
    assert codes[0] == 200 and codes[1:] == [409, 409], [r.text for r in responses]
    async with app.state.sessionmaker() as session:
        stored = await session.scalar(
            select(func.count()).select_from(MatchMove).where(MatchMove.match_id == match_id)
        )
    assert stored == 1
    assert (await load_match(app, match_id)).move_count == 1


async def test_a_fallen_flag_is_found_on_read_and_loses_the_match(
    app: FastAPI,
    client: httpx.AsyncClient,
    ids: dict[str, int],
    alice: dict[str, str],
    bob: dict[str, str],
) -> None:
    # Started a second ago with half a second on each clock: alice's flag is down already.
    match_id = await start_match(
        app,
        first=ids["alice"],
        second=ids["bob"],
        time_control=TimeControl(initial_ms=500, increment_ms=0),
        now=service.utcnow() - timedelta(seconds=1),
    )
    state = (await client.get(f"/api/matches/{match_id}", headers=bob)).json()
    assert (state["status"], state["result"], state["end_reason"]) == (
        "finished",
        "second",
        "timeout",
    )
    assert state["winner_player_id"] == ids["bob"]
    assert state["clock"]["first_ms"] == 0 and state["clock"]["second_ms"] == 500


async def test_moving_after_the_flag_fell_loses_on_time(
    app: FastAPI, client: httpx.AsyncClient, ids: dict[str, int], alice: dict[str, str]
) -> None:
    match_id = await start_match(
        app,
        first=ids["alice"],
        second=ids["bob"],
        time_control=TimeControl(initial_ms=500, increment_ms=0),
        now=service.utcnow() - timedelta(seconds=1),
    )
    late = await move(client, match_id, 3, alice)
    assert late.status_code == 409 and late.json()["error"] == "timeout"
    match = await load_match(app, match_id)
    assert (match.status, match.end_reason, match.move_count) == ("finished", "timeout", 0)


async def test_the_sweeper_ends_an_abandoned_match_and_hooks_run_once(
    app: FastAPI, client: httpx.AsyncClient, ids: dict[str, int]
) -> None:
    inside: list[tuple[str, str]] = []
    after: list[tuple[str, str]] = []

    async def on_finished(session: AsyncSession, match: Match) -> None:
        # Inside the transaction: the result is flushed, not yet committed.
        row = await session.get(Match, match.id)
        assert row is not None
        inside.append((match.id, row.status))

    async def after_finished(match: Match) -> None:
        async with app.state.sessionmaker() as session:
            committed = await session.get(Match, match.id)
        assert committed is not None
        after.append((match.id, committed.status))
        raise RuntimeError("a failing follower must not undo the result")

    app.state.match_hooks.on_finished.append(on_finished)
    app.state.match_hooks.after_finished.append(after_finished)
    match_id = await start_match(
        app,
        first=ids["alice"],
        second=ids["bob"],
        time_control=TimeControl(initial_ms=500, increment_ms=0),
        now=service.utcnow() - timedelta(seconds=1),
    )
    runtime = app.state.match_runtime
    async with app.state.bus.subscribe(player_channel(ids["bob"])) as subscription:
        ended = await asyncio.gather(sweep_once(runtime), sweep_once(runtime))
        received = await subscription.get(5)
    assert received is not None
    event = received[1]
    assert sum(ended) == 1  # two sweepers found it; exactly one ended it
    assert event["type"] == "match.finished" and event["match_id"] == match_id
    assert event["result"] == "second"
    assert inside == [(match_id, "finished")]
    assert after == [(match_id, "finished")]
    assert (await load_match(app, match_id)).end_reason == "timeout"


async def test_the_sweeper_runs_by_itself(make_game_app: GameAppFactory, running: Running) -> None:
    app = make_game_app(**{**FAST_MATCHES, "match_sweep_seconds": 0.1})
    async with running(app):
        ids = await make_players(app, "dora", "eve")
        async with app.state.bus.subscribe(player_channel(ids["dora"])) as subscription:
            match_id = await start_match(
                app,
                first=ids["dora"],
                second=ids["eve"],
                time_control=TimeControl(initial_ms=300, increment_ms=0),
            )
            received = await subscription.get(10)
    assert received is not None
    assert received[1]["match_id"] == match_id and received[1]["type"] == "match.finished"


async def test_bad_match_requests_are_refused(
    client: httpx.AsyncClient, ids: dict[str, int], alice: dict[str, str]
) -> None:
    for body in ({"bot_level": 4}, {"bot_level": 0}, {"mode": "ranked"}, {"bot_level": "x"}):
        response = await client.post("/api/matches", json=body, headers=alice)
        assert response.status_code == 422, body


async def test_callers_need_game_play_and_a_player(
    client: httpx.AsyncClient, ids: dict[str, int], mint: Minter
) -> None:
    stranger = player_headers(mint, "nobody")
    no_profile = await client.post("/api/matches", json={}, headers=stranger)
    assert no_profile.status_code == 404
    assert no_profile.json()["detail"] == "no player profile for this account yet"
    wrong_scope = {
        "Authorization": "Bearer "
        + mint("x", audience="veze-game", scopes=("game.read_mail",), preferred_username="alice")
    }
    assert (await client.post("/api/matches", json={}, headers=wrong_scope)).status_code == 403
    assert (await client.post("/api/matches", json={})).status_code == 401


async def test_create_match_refuses_inconsistent_seats(
    app: FastAPI, client: httpx.AsyncClient, ids: dict[str, int]
) -> None:
    alice, bob = ids["alice"], ids["bob"]
    cases: list[tuple[str, int | None, int | None]] = [
        ("bot", bob, 1),  # a bot match has no second player
        ("bot", None, None),  # ... and needs a level
        ("bot", None, 9),
        ("ranked", None, None),  # a ranked match needs two players
        ("casual", alice, None),  # ... two different ones
        ("ranked", bob, 3),  # ... and no bot
        ("blitz", bob, None),
    ]
    async with app.state.sessionmaker() as session:
        for mode, second, bot_level in cases:
            with pytest.raises(BadRequest):
                await service.create_match(
                    session,
                    mode=mode,
                    first_player_id=alice,
                    second_player_id=second,
                    bot_level=bot_level,
                )
        assert await session.scalar(select(func.count()).select_from(Match)) == 0


async def test_matches_use_the_configured_time_control(
    make_game_app: GameAppFactory, running: Running, mint: Minter
) -> None:
    app = make_game_app(**FAST_MATCHES, match_clock_seconds=300, match_increment_seconds=5)
    async with running(app) as client:
        ids = await make_players(app, "fay", "gus")
        match_id = await start_match(app, first=ids["fay"], second=ids["gus"])
        state = (
            await client.get(f"/api/matches/{match_id}", headers=player_headers(mint, "fay"))
        ).json()
    assert state["clock"]["initial_ms"] == 300_000
    assert state["clock"]["increment_ms"] == 5_000
    # Running down from five minutes (the test box may be slow: allow it seconds, not minutes).
    assert 290_000 < state["clock"]["first_ms"] <= 300_000


async def test_the_sweeper_makes_a_bot_reply_that_was_lost(
    app: FastAPI, client: httpx.AsyncClient, ids: dict[str, int], alice: dict[str, str]
) -> None:
    # A bot match where the player moved a minute ago and the bot never answered (a restart).
    earlier = service.utcnow() - timedelta(minutes=1)
    match_id = await start_match(
        app, first=ids["alice"], second=None, mode="bot", bot_level=2, now=earlier
    )
    async with app.state.sessionmaker() as session:
        match = await session.get(Match, match_id)
        assert match is not None
        await service.play_move(
            session,
            hooks=app.state.match_hooks,
            match=match,
            player_id=ids["alice"],
            column=3,
            now=earlier,
        )
        await session.commit()
    await sweep_once(app.state.match_runtime)
    state = (await client.get(f"/api/matches/{match_id}", headers=alice)).json()
    assert len(state["moves"]) == 2 and state["to_move"] == "first"


async def test_a_full_board_without_four_in_a_row_is_a_draw(
    app: FastAPI,
    client: httpx.AsyncClient,
    ids: dict[str, int],
    alice: dict[str, str],
    bob: dict[str, str],
) -> None:
    finished: list[Match] = []

    async def on_finished(session: AsyncSession, match: Match) -> None:
        finished.append(match)

    app.state.match_hooks.on_finished.append(on_finished)
    match_id = await start_match(app, first=ids["alice"], second=ids["bob"])
    moves = [3, 3, 1, 6, 5, 0, 1, 1, 4, 2, 6, 6, 1, 4, 1, 2, 3, 1, 4, 3, 4]
    moves += [4, 5, 2, 3, 6, 3, 0, 6, 4, 2, 6, 0, 5, 5, 5, 5, 2, 0, 2, 0, 0]
    for ply, column in enumerate(moves):
        response = await move(client, match_id, column, alice if ply % 2 == 0 else bob)
        assert response.status_code == 200, (ply, response.text)
    state = response.json()
    assert (state["status"], state["result"], state["end_reason"]) == ("finished", "draw", "draw")
    assert state["winner_player_id"] is None and state["winning_cells"] == []
    assert all(cell != 0 for row in state["board"] for cell in row)
    assert [match.id for match in finished] == [match_id]
    history = (await client.get("/api/matches", headers=bob)).json()["matches"]
    assert history[0]["outcome"] == "draw"


async def test_a_player_may_run_only_a_few_bot_matches_at_once(
    client: httpx.AsyncClient, ids: dict[str, int], alice: dict[str, str]
) -> None:
    started = [await client.post("/api/matches", json={}, headers=alice) for _ in range(3)]
    assert [response.status_code for response in started] == [201, 201, 201]
    refused = await client.post("/api/matches", json={}, headers=alice)
    assert refused.status_code == 409 and refused.json()["error"] == "too_many_matches"
    resigned = await client.post(f"/api/matches/{started[0].json()['id']}/resign", headers=alice)
    assert resigned.status_code == 200
    assert (await client.post("/api/matches", json={}, headers=alice)).status_code == 201
