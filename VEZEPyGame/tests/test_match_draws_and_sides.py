"""Draw offers between two people (API and SSE to both) and the bot on either side."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from VEZEPyCore.testing import next_event, serve_app, sse_events
from VEZEPyGame.db.competition import RatingChange
from VEZEPyGame.tests.conftest import GameAppFactory, Running
from VEZEPyGame.tests.match_support import (
    FAST_MATCHES,
    Minter,
    make_players,
    player_headers,
    start_match,
)


async def test_a_draw_is_offered_declined_renewed_and_accepted_live_for_both(
    make_game_app: GameAppFactory, mint: Minter
) -> None:
    app = make_game_app(**FAST_MATCHES)
    alice, bob = player_headers(mint, "alice"), player_headers(mint, "bob")
    async with (
        serve_app(app) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as client,
    ):
        ids = await make_players(app, "alice", "bob", "carol")
        match_id = await start_match(app, first=ids["alice"], second=ids["bob"], mode="ranked")
        api = f"/api/matches/{match_id}"
        async with (
            client.stream("GET", f"{api}/events", headers=alice) as alice_stream,
            client.stream("GET", f"{api}/events", headers=bob) as bob_stream,
        ):
            alice_events, bob_events = sse_events(alice_stream), sse_events(bob_stream)
            assert (await next_event(alice_events))[1]["draw_offer"] is None
            await next_event(bob_events)

            nothing_to_accept = await client.post(f"{api}/draw/accept", headers=bob)
            stranger = await client.post(f"{api}/draw", headers=player_headers(mint, "carol"))
            offered = await client.post(f"{api}/draw", headers=alice)  # on her own turn
            twice = await client.post(f"{api}/draw", headers=alice)
            own_offer = await client.post(f"{api}/draw/accept", headers=alice)
            bob_sees_offer = await next_event(bob_events, seconds=5)
            alice_sees_offer = await next_event(alice_events, seconds=5)

            declined = await client.post(f"{api}/draw/decline", headers=bob)
            bob_sees_decline = await next_event(bob_events, seconds=5)
            alice_sees_decline = await next_event(alice_events, seconds=5)

            # A move answers a standing offer with "no" too.
            await client.post(f"{api}/draw", headers=bob)
            await next_event(alice_events, seconds=5)
            moved = await client.post(f"{api}/moves", json={"column": 3}, headers=alice)
            await next_event(alice_events, seconds=5)

            # Alice offered at the start: she must make three moves of her own before she
            # offers again (the cooldown itself: test_draw_cooldown_and_bot.py).
            cooling = await client.post(f"{api}/draw", headers=alice)
            for column, headers in ((3, bob), (0, alice), (0, bob), (6, alice)):
                await client.post(f"{api}/moves", json={"column": column}, headers=headers)
            await client.post(f"{api}/draw", headers=alice)
            accepted = await client.post(f"{api}/draw/accept", headers=bob)
            alice_sees_end = await next_event(alice_events, seconds=5)
            while alice_sees_end[0] != "match.finished":
                alice_sees_end = await next_event(alice_events, seconds=5)
            late = await client.post(f"{api}/draw", headers=bob)
    async with app.state.sessionmaker() as session:
        outcomes = sorted(
            (
                await session.scalars(
                    select(RatingChange.outcome).where(RatingChange.match_id == match_id)
                )
            ).all()
        )

    assert nothing_to_accept.status_code == 409
    assert nothing_to_accept.json()["error"] == "no_draw_offer"
    assert stranger.status_code == 404
    assert offered.status_code == 200 and offered.json()["draw_offer"] == "first"
    assert twice.status_code == 409 and twice.json()["error"] == "draw_offered"
    assert own_offer.status_code == 409
    for name, state in (bob_sees_offer, alice_sees_offer):
        assert name == "match.draw" and state["draw_offer"] == "first"
    assert declined.status_code == 200 and declined.json()["draw_offer"] is None
    for name, state in (bob_sees_decline, alice_sees_decline):
        assert name == "match.draw" and state["draw_offer"] is None
    assert moved.status_code == 200 and moved.json()["draw_offer"] is None
    assert cooling.status_code == 409 and cooling.json()["error"] == "draw_cooldown"
    assert accepted.status_code == 200
    final = accepted.json()
    assert (final["status"], final["result"], final["end_reason"]) == (
        "finished",
        "draw",
        "agreement",
    )
    assert alice_sees_end[1]["result"] == "draw"
    assert late.status_code == 409  # the match is over
    assert outcomes == ["draw", "draw"]  # a ranked draw by agreement counts once, as a draw


async def test_the_bot_opens_when_the_player_takes_the_second_seat(
    make_game_app: GameAppFactory, running: Running, mint: Minter
) -> None:
    app: FastAPI = make_game_app(**FAST_MATCHES)
    async with running(app) as client:
        await make_players(app, "alice")
        alice = player_headers(mint, "alice")
        created = await client.post(
            "/api/matches", json={"bot_level": 1, "side": "second"}, headers=alice
        )
        bad_side = await client.post(
            "/api/matches", json={"bot_level": 1, "side": "middle"}, headers=alice
        )
        state = created.json()
        # Alice answers; the bot replies in the same request.
        free = next(c for c in range(7) if state["board"][0][c] == 0)
        after = await client.post(
            f"/api/matches/{state['id']}/moves", json={"column": free}, headers=alice
        )
        answered = await client.post(f"/api/matches/{state['id']}/draw", headers=alice)
        history = await client.get("/api/matches", headers=alice)
    assert created.status_code == 201, created.text
    assert state["first"]["bot_level"] == 1 and state["second"]["handle"] == "alice"
    assert len(state["moves"]) == 1 and state["to_move"] == "second"  # the bot has opened
    assert bad_side.status_code == 422
    assert after.status_code == 200 and len(after.json()["moves"]) == 3
    assert after.json()["to_move"] == "second"
    # The bot answers a draw offer in the offer's request (how: test_draw_cooldown_and_bot.py).
    assert answered.status_code == 200 and answered.json()["draw_offer"] is None
    [listed] = history.json()["matches"]
    assert listed["your_side"] == "second" and listed["opponent"].startswith("Bot")
