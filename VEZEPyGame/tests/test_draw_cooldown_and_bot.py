"""Draw offers: the cooldown between a side's offers, and the bot's answers by its search.

Positions for the bot are built move by move through the match service (as the API would
make them, with the bot's moves chosen here), so each verdict is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from VEZEPyCore.testing import next_event, serve_app, sse_events
from VEZEPyGame.services.bot import judge_draw
from VEZEPyGame.services.bot.draws import is_dead
from VEZEPyGame.services.connect4 import Board
from VEZEPyGame.services.matches import service, tasks
from VEZEPyGame.services.matches.draws import DRAW_OFFER_COOLDOWN_MOVES
from VEZEPyGame.tests.conftest import GameAppFactory, Running
from VEZEPyGame.tests.match_support import (
    FAST_MATCHES,
    Minter,
    load_match,
    make_players,
    player_headers,
    start_match,
)

#: The person (first) to move and able to win at once in column 3: the bot has lost.
LOST_FOR_BOT = (0, 6, 1, 6, 2, 5)
#: The bot (second) has three in a row at the bottom, open at both ends: it wins next move.
WON_FOR_BOT = (0, 3, 0, 2, 6, 4)
#: Thirty-eight stones, no line of four left for either side: only a draw is possible.
DEAD_DRAW: tuple[int, ...] = (
    *(5, 1, 5, 1, 3, 4, 4, 0, 1, 6, 6, 3, 0, 5, 5, 4, 4, 1, 5),
    *(3, 1, 5, 3, 1, 0, 2, 2, 0, 2, 4, 6, 3, 0, 6, 0, 2, 4, 6),
)
#: Thirty-six stones of the same game: a draw with best play, though lines of four remain.
#: The hard bot searches it to the end; the easier ones cannot see that far.
DRAWN_DEEP = DEAD_DRAW[:36]


async def bot_match_at(app: FastAPI, player_id: int, level: int, moves: Sequence[int]) -> str:
    """A bot match (the person first, the bot second at `level`) after `moves`."""
    async with app.state.sessionmaker() as session:
        match = await service.create_match(
            session, mode="bot", first_player_id=player_id, second_player_id=None, bot_level=level
        )
        for ply, column in enumerate(moves):
            await service.play_move(
                session,
                hooks=app.state.match_hooks,
                match=match,
                player_id=player_id if ply % 2 == 0 else None,
                column=column,
            )
        await session.commit()
    assert match.status == "active"
    return match.id


async def play(client: httpx.AsyncClient, api: str, headers: dict[str, str], column: int) -> None:
    response = await client.post(f"{api}/moves", json={"column": column}, headers=headers)
    assert response.status_code == 200, response.text


async def test_a_declined_offer_blocks_that_side_until_it_has_made_three_more_moves(
    make_game_app: GameAppFactory, mint: Minter
) -> None:
    app = make_game_app(**FAST_MATCHES)
    alice, bob = player_headers(mint, "alice"), player_headers(mint, "bob")
    async with (
        serve_app(app) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as client,
    ):
        ids = await make_players(app, "alice", "bob")
        match_id = await start_match(app, first=ids["alice"], second=ids["bob"])
        api = f"/api/matches/{match_id}"
        async with client.stream("GET", f"{api}/events", headers=bob) as bob_stream:
            bob_events = sse_events(bob_stream)
            await next_event(bob_events)
            offered = await client.post(f"{api}/draw", headers=alice)
            declined = await client.post(f"{api}/draw/decline", headers=bob)
            again = await client.post(f"{api}/draw", headers=alice)
            # Bob sees the offer, then its decline with alice's cooldown in the state.
            seen_offer = await next_event(bob_events, seconds=10)
            seen_decline = await next_event(bob_events, seconds=10)
        # The cooldown is alice's alone: bob may offer, and alice may still agree to it.
        bob_offer = await client.post(f"{api}/draw", headers=bob)
        await client.post(f"{api}/draw/decline", headers=alice)

        await play(client, api, alice, 3)
        after_one = await client.post(f"{api}/draw", headers=alice)
        await play(client, api, bob, 3)
        await play(client, api, alice, 0)
        await play(client, api, bob, 0)
        after_two = await client.post(f"{api}/draw", headers=alice)
        await play(client, api, alice, 6)  # her third move since the offer
        allowed = await client.post(f"{api}/draw", headers=alice)  # on bob's turn
        accepted = await client.post(f"{api}/draw/accept", headers=bob)

    assert offered.status_code == 200
    assert offered.json()["draw_cooldown"] == {"first": DRAW_OFFER_COOLDOWN_MOVES, "second": 0}
    assert declined.status_code == 200 and declined.json()["draw_offer"] is None
    assert again.status_code == 409 and again.json()["error"] == "draw_cooldown"
    assert "3 more moves" in again.json()["detail"]
    assert seen_offer[0] == "match.draw" and seen_offer[1]["draw_offer"] == "first"
    assert seen_decline[0] == "match.draw" and seen_decline[1]["draw_offer"] is None
    assert seen_decline[1]["draw_cooldown"] == {"first": 3, "second": 0}
    assert bob_offer.status_code == 200 and bob_offer.json()["draw_offer"] == "second"
    assert after_one.status_code == 409 and after_one.json()["error"] == "draw_cooldown"
    assert after_two.status_code == 409 and "1 more move " in after_two.json()["detail"]
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["draw_offer"] == "first"
    assert allowed.json()["draw_cooldown"]["first"] == DRAW_OFFER_COOLDOWN_MOVES
    assert (accepted.json()["result"], accepted.json()["end_reason"]) == ("draw", "agreement")


async def test_the_bot_answers_by_its_search_at_every_level_pushed_live(
    make_game_app: GameAppFactory, mint: Minter
) -> None:
    app = make_game_app(**FAST_MATCHES)
    alice = player_headers(mint, "alice")
    answers: dict[tuple[str, int], dict[str, Any]] = {}
    async with (
        serve_app(app) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=20) as client,
    ):
        ids = await make_players(app, "alice")
        positions = {"lost": LOST_FOR_BOT, "dead": DEAD_DRAW, "won": WON_FOR_BOT}
        for name, moves in positions.items():
            for level in (1, 2, 3):
                match_id = await bot_match_at(app, ids["alice"], level, moves)
                api = f"/api/matches/{match_id}"
                if (name, level) == ("won", 3):
                    # Watched live: the offer, then the bot's refusal, like a person's.
                    async with client.stream("GET", f"{api}/events", headers=alice) as stream:
                        events = sse_events(stream)
                        await next_event(events)
                        response = await client.post(f"{api}/draw", headers=alice)
                        live = [await next_event(events, seconds=20) for _ in range(2)]
                else:
                    response = await client.post(f"{api}/draw", headers=alice)
                assert response.status_code == 200, response.text
                answers[name, level] = response.json()
                stored = await load_match(app, match_id)
                assert stored.status == answers[name, level]["status"]
        again = await client.post(f"/api/matches/{answers['won', 1]['id']}/draw", headers=alice)

    for level in (1, 2, 3):
        for name in ("lost", "dead"):
            state = answers[name, level]
            assert (state["status"], state["result"], state["end_reason"]) == (
                "finished",
                "draw",
                "agreement",
            ), (name, level)
        won = answers["won", level]
        assert (won["status"], won["draw_offer"]) == ("active", None), level
        assert won["draw_cooldown"]["first"] == DRAW_OFFER_COOLDOWN_MOVES
    assert [name for name, _ in live] == ["match.draw", "match.draw"]
    assert [state["draw_offer"] for _, state in live] == ["first", None]
    # A declined offer to the bot has the same cooldown: every answer costs a search.
    assert again.status_code == 409 and again.json()["error"] == "draw_cooldown"


async def test_the_sweeper_answers_an_offer_the_bot_never_got_to(
    make_game_app: GameAppFactory, running: Running
) -> None:
    app = make_game_app(**FAST_MATCHES)
    async with running(app):
        ids = await make_players(app, "alice")
        match_id = await bot_match_at(app, ids["alice"], 2, LOST_FOR_BOT)
        # As if the process had stopped between the offer's commit and the bot's answer.
        async with app.state.sessionmaker() as session:
            match = await service.get_match(session, match_id)
            assert match is not None
            match.draw_offer_side = 0
            match.first_draw_offer_ply = match.move_count
            match.turn_started_at -= timedelta(seconds=tasks.STALLED_BOT_SECONDS + 5)
            await session.commit()
        await tasks.sweep_once(app.state.match_runtime)
        answered = await load_match(app, match_id)
    assert (answered.status, answered.result, answered.end_reason) == (
        "finished",
        "draw",
        "agreement",
    )


@pytest.mark.parametrize("level", [1, 2, 3])
def test_no_level_takes_a_draw_from_an_even_opening(level: int) -> None:
    for moves in ((), (3,), (3, 3), (3, 3, 3)):
        person_to_move = len(moves) % 2
        verdict = judge_draw(moves, level, bot_side=1 - person_to_move, time_budget=0.2)
        assert not verdict.accept and not verdict.proven, (moves, verdict)


def test_the_hard_bot_sees_a_draw_to_the_end_where_the_easier_ones_play_on() -> None:
    assert not is_dead(Board.from_moves(DRAWN_DEEP))
    assert is_dead(Board.from_moves(DEAD_DRAW))
    hard = judge_draw(DRAWN_DEEP, 3, bot_side=1, time_budget=5.0)
    medium = judge_draw(DRAWN_DEEP, 2, bot_side=1)
    assert (hard.accept, hard.proven, hard.score) == (True, True, 0)
    assert hard.depth == 42 - len(DRAWN_DEEP)
    # Five plies of six: a heuristic guess that does not put the bot behind.
    assert (medium.accept, medium.proven) == (False, False)
    # An offer on the bot's own turn is judged from the bot's side too: it wins at once here.
    on_its_turn = judge_draw((*WON_FOR_BOT, 1), 1, bot_side=1)
    assert (on_its_turn.accept, on_its_turn.proven) == (False, True) and on_its_turn.score > 0
