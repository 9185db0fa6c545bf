"""Queue tickets over HTTP and the matchmaker's passes against the real database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from VEZEPyCore.events.bus import EventBus
from VEZEPyCore.testing import serve_app, sse_events
from VEZEPyGame.db.competition import QueueTicket, Rating
from VEZEPyGame.services.matchmaking import tickets
from VEZEPyGame.services.matchmaking.worker import Matchmaker, player_channel
from VEZEPyGame.tests.competition_fixtures import (
    QUIET,
    Minter,
    RecordingStart,
    add_players,
    competition_app,
    player_headers,
)
from VEZEPyGame.tests.conftest import GameAppFactory, Running


@pytest.fixture
def start() -> RecordingStart:
    return RecordingStart()


@pytest.fixture
async def app(make_game_app: GameAppFactory, start: RecordingStart) -> FastAPI:
    return competition_app(make_game_app(**QUIET), start_match=start)


@pytest.fixture
async def client(app: FastAPI, running: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with running(app) as client:
        yield client


async def age_tickets(app: FastAPI, seconds: float) -> None:
    """Move every ticket's queueing time back, as if they had waited `seconds` longer."""
    async with app.state.sessionmaker() as session:
        for ticket in await session.scalars(select(QueueTicket)):
            ticket.created_at = ticket.created_at - timedelta(seconds=seconds)
        await session.commit()


async def test_join_status_and_cancel(
    app: FastAPI, client: httpx.AsyncClient, mint: Minter
) -> None:
    await add_players(app, "alice")
    alice = player_headers(mint, "alice")
    joined = await client.post("/api/queue", json={"mode": "casual"}, headers=alice)
    again = await client.post("/api/queue", json={"mode": "ranked"}, headers=alice)
    status = await client.get("/api/queue", headers=alice)
    cancelled = await client.delete("/api/queue", headers=alice)
    cancelled_twice = await client.delete("/api/queue", headers=alice)
    after = await client.get("/api/queue", headers=alice)
    rejoined = await client.post("/api/queue", json={}, headers=alice)

    assert joined.status_code == 201, joined.text
    body = joined.json()
    assert (body["mode"], body["region"], body["rating"], body["status"]) == (
        "casual",
        "eu",
        1500,
        "waiting",
    )
    assert again.status_code == 409  # no double queueing
    assert status.json()["ticket"]["id"] == body["id"]
    assert status.json()["ticket"]["waiting_in_pool"] == 1
    assert status.json()["ticket"]["window"] >= 50  # the default base window
    assert cancelled.status_code == 204
    assert cancelled_twice.status_code == 404
    assert after.json()["ticket"]["status"] == "cancelled"
    assert rejoined.status_code == 201 and rejoined.json()["mode"] == "ranked"


async def test_queue_joins_are_rate_limited_per_player(
    make_game_app: GameAppFactory, running: Running, mint: Minter
) -> None:
    app = make_game_app(matchmaker_joins_per_minute=2, **QUIET)
    async with running(app) as client:
        await add_players(app, "alice", "bob")
        alice = player_headers(mint, "alice")
        statuses = []
        for _ in range(3):
            statuses.append((await client.post("/api/queue", json={}, headers=alice)).status_code)
            await client.delete("/api/queue", headers=alice)
        refused = await client.post("/api/queue", json={}, headers=alice)
        bob = await client.post("/api/queue", json={}, headers=player_headers(mint, "bob"))
    assert statuses == [201, 201, 429]
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert bob.status_code == 201  # the budget is each player's own


async def test_queue_refuses_bad_input_and_strangers(
    app: FastAPI, client: httpx.AsyncClient, mint: Minter
) -> None:
    await add_players(app, "alice")
    alice = player_headers(mint, "alice")
    bad_mode = await client.post("/api/queue", json={"mode": "bot"}, headers=alice)
    bad_region = await client.post("/api/queue", json={"region": "mars"}, headers=alice)
    no_player = await client.post("/api/queue", json={}, headers=player_headers(mint, "nobody"))
    anonymous = await client.post("/api/queue", json={})
    wrong_scope = await client.post(
        "/api/queue", json={}, headers=player_headers(mint, "alice", "game.read_mail")
    )
    assert bad_mode.status_code == 422
    assert bad_region.status_code == 400
    assert no_player.status_code == 404
    assert anonymous.status_code == 401
    assert wrong_scope.status_code == 403


async def test_the_matchmaker_pairs_close_ratings_and_announces_it(
    app: FastAPI, client: httpx.AsyncClient, mint: Minter, start: RecordingStart
) -> None:
    ids = await add_players(app, "alice", "bob", "carol")
    async with app.state.sessionmaker() as session:
        # carol is far above the others: she must not be paired yet.
        now = datetime.now(UTC)
        session.add(Rating(player_id=ids[2], mode="ranked", mu=2300, sigma=100, updated_at=now))
        await session.commit()
    bus: EventBus = app.state.bus
    async with bus.subscribe(player_channel(ids[0]), player_channel(ids[1])) as subscription:
        for handle in ("alice", "bob", "carol"):
            joined = await client.post("/api/queue", json={}, headers=player_headers(mint, handle))
            assert joined.status_code == 201
        started = await app.state.matchmaker.run_pass()
        events = [await subscription.get(5), await subscription.get(5)]

    assert len(started) == 1 and len(start.requests) == 1
    request = start.requests[0]
    assert {request.first_player_id, request.second_player_id} == {ids[0], ids[1]}
    assert (request.mode, request.bot_level) == ("ranked", None)
    found = dict(e for e in events if e is not None)
    assert found[player_channel(ids[0])]["type"] == "match.found"
    assert found[player_channel(ids[0])]["match_id"] == started[0].match_id
    assert found[player_channel(ids[1])]["opponent_id"] == ids[0]
    alice = (await client.get("/api/queue", headers=player_headers(mint, "alice"))).json()
    carol = (await client.get("/api/queue", headers=player_headers(mint, "carol"))).json()
    assert alice["ticket"]["status"] == "matched"
    assert alice["ticket"]["match_id"] == started[0].match_id
    assert alice["ticket"]["opponent_handle"] == "bob"
    assert carol["ticket"]["status"] == "waiting"
    assert await app.state.matchmaker.run_pass() == []  # matched tickets are not paired again


async def test_a_long_wait_widens_the_window_then_a_bot_fills_the_seat(
    make_game_app: GameAppFactory, running: Running, mint: Minter, start: RecordingStart
) -> None:
    app = competition_app(
        make_game_app(
            matchmaker_enabled=False,
            matchmaker_window_base=50,
            matchmaker_window_growth=10,
            matchmaker_window_max=400,
            matchmaker_bot_after_seconds=120,
        ),
        start_match=start,
    )
    async with running(app) as client:
        ids = await add_players(app, "alice", "bob", "dave")
        async with app.state.sessionmaker() as session:
            now = datetime.now(UTC)
            session.add(Rating(player_id=ids[1], mode="ranked", mu=1800, sigma=100, updated_at=now))
            session.add(Rating(player_id=ids[2], mode="ranked", mu=2400, sigma=100, updated_at=now))
            await session.commit()
        for handle in ("alice", "bob"):
            await client.post("/api/queue", json={}, headers=player_headers(mint, handle))
        # dave asked for the bot if nobody fits (a ranked ticket never gets one otherwise).
        joined = await client.post(
            "/api/queue", json={"bot_fill": True}, headers=player_headers(mint, "dave")
        )
        assert joined.json()["bot_fill"] is True
        assert await app.state.matchmaker.run_pass() == []  # 300 apart: too far for now
        await age_tickets(app, 30)  # windows now 350
        [pair] = await app.state.matchmaker.run_pass()
        assert {t.player_id for t in pair.tickets} == {ids[0], ids[1]}
        await age_tickets(app, 100)  # dave has waited 130 s: past the bot wait
        [bot_game] = await app.state.matchmaker.run_pass()
        status = (await client.get("/api/queue", headers=player_headers(mint, "dave"))).json()
    assert bot_game.bot_level == 3  # a 2400 player gets the hardest bot
    assert start.requests[-1].second_player_id is None
    assert start.requests[-1].mode == "ranked"
    assert status["ticket"]["status"] == "matched" and status["ticket"]["bot_level"] == 3


async def test_the_bot_takes_only_tickets_whose_player_agreed(
    make_game_app: GameAppFactory, running: Running, mint: Minter, start: RecordingStart
) -> None:
    """Ranked waits for a person unless asked; casual accepts the bot unless told not to."""
    app = competition_app(
        make_game_app(matchmaker_enabled=False, matchmaker_bot_after_seconds=30),
        start_match=start,
    )
    async with running(app) as client:
        await add_players(app, "ranked_default", "ranked_yes", "casual_default", "casual_no")
        # Each in a region of its own: nobody can pair with anybody.
        joins: dict[str, dict[str, object]] = {
            "ranked_default": {"mode": "ranked", "region": "eu"},
            "ranked_yes": {"mode": "ranked", "bot_fill": True, "region": "na"},
            "casual_default": {"mode": "casual", "region": "asia"},
            "casual_no": {"mode": "casual", "bot_fill": False, "region": "oce"},
        }
        for handle, body in joins.items():
            response = await client.post(
                "/api/queue", json=body, headers=player_headers(mint, handle)
            )
            assert response.status_code == 201, response.text
        await age_tickets(app, 120)
        started = await app.state.matchmaker.run_pass()
        statuses = {
            handle: (await client.get("/api/queue", headers=player_headers(mint, handle))).json()
            for handle in joins
        }
    assert {m.tickets[0].ticket_id for m in started} == {
        statuses["ranked_yes"]["ticket"]["id"],
        statuses["casual_default"]["ticket"]["id"],
    }
    assert all(request.bot_level is not None for request in start.requests)
    assert statuses["ranked_default"]["ticket"]["status"] == "waiting"
    assert statuses["casual_no"]["ticket"]["status"] == "waiting"
    assert [statuses[h]["ticket"]["bot_fill"] for h in joins] == [False, True, True, False]


async def test_two_workers_never_put_a_ticket_in_two_matches(
    app: FastAPI, client: httpx.AsyncClient, mint: Minter, start: RecordingStart
) -> None:
    handles = [f"p{i}" for i in range(24)]
    await add_players(app, *handles)
    for handle in handles:
        assert (
            await client.post("/api/queue", json={}, headers=player_headers(mint, handle))
        ).status_code == 201
    second = Matchmaker(
        sessionmaker=app.state.sessionmaker,
        bus=app.state.bus,
        start_matches=start,
        settings=app.state.settings,
    )
    # Both workers see every ticket waiting and race to claim the same pairs.
    first_pass, second_pass = await asyncio.gather(
        app.state.matchmaker.run_pass(), second.run_pass()
    )
    started = first_pass + second_pass
    tickets = [t.ticket_id for match in started for t in match.tickets]
    assert len(tickets) == len(set(tickets)) == 24
    assert len(start.requests) == 12
    async with app.state.sessionmaker() as session:
        rows = list(await session.scalars(select(QueueTicket)))
    assert {row.status for row in rows} == {"matched"}
    by_match: dict[str | None, int] = {}
    for row in rows:
        by_match[row.match_id] = by_match.get(row.match_id, 0) + 1
    assert sorted(by_match.values()) == [2] * 12


async def test_a_cancel_racing_a_claim_leaves_one_outcome(
    app: FastAPI, client: httpx.AsyncClient, mint: Minter, start: RecordingStart
) -> None:
    await add_players(app, "alice", "bob")
    for handle in ("alice", "bob"):
        await client.post("/api/queue", json={}, headers=player_headers(mint, handle))
    cancel, started = await asyncio.gather(
        client.delete("/api/queue", headers=player_headers(mint, "alice")),
        app.state.matchmaker.run_pass(),
    )
    async with app.state.sessionmaker() as session:
        rows = await session.execute(select(QueueTicket.player_id, QueueTicket.status))
        statuses = {row[0]: row[1] for row in rows}
    if cancel.status_code == 204:
        assert started == [] and start.requests == []
        assert sorted(statuses.values()) == ["cancelled", "waiting"]
    else:
        assert cancel.status_code == 404 and len(started) == 1
        assert set(statuses.values()) == {"matched"}


async def test_a_failed_start_leaves_the_tickets_waiting(
    make_game_app: GameAppFactory, running: Running, mint: Minter
) -> None:
    async def broken(session: object, request: object) -> str:
        raise RuntimeError("match service down")

    app = competition_app(make_game_app(**QUIET), start_match=broken)
    async with running(app) as client:
        await add_players(app, "alice", "bob")
        for handle in ("alice", "bob"):
            await client.post("/api/queue", json={}, headers=player_headers(mint, handle))
        assert await app.state.matchmaker.run_pass() == []
        async with app.state.sessionmaker() as session:
            statuses = set(await session.scalars(select(QueueTicket.status)))
    assert statuses == {"waiting"}


async def test_the_background_loop_pairs_on_a_new_ticket_and_the_stream_says_so(
    make_game_app: GameAppFactory, mint: Minter, start: RecordingStart
) -> None:
    # A long poll: only the new ticket's wake-up can pair in time.
    app = competition_app(
        make_game_app(matchmaker_poll_seconds=30, matchmaker_bot_after_seconds=0),
        start_match=start,
    )
    alice = player_headers(mint, "alice")
    async with (
        serve_app(app) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as client,
    ):
        await add_players(app, "alice", "bob")
        await client.post("/api/queue", json={}, headers=alice)
        async with client.stream("GET", "/api/queue/events", headers=alice) as response:
            assert response.status_code == 200
            events = sse_events(response)
            first = await asyncio.wait_for(anext(events), 10)
            await client.post("/api/queue", json={}, headers=player_headers(mint, "bob"))
            found = await asyncio.wait_for(anext(events), 10)
            while found[0] != "match.found":  # a status refresh may come first
                found = await asyncio.wait_for(anext(events), 10)
    assert first[0] == "status" and first[1]["ticket"]["status"] == "waiting"
    assert found[1]["match_id"] == await _only_match_id(app)
    assert app.state.matchmaker.passes >= 1


async def _only_match_id(app: FastAPI) -> str:
    async with app.state.sessionmaker() as session:
        [match_id] = set(await session.scalars(select(QueueTicket.match_id)))
    assert match_id is not None
    return str(match_id)


async def test_status_stream_needs_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/queue/events")
    assert response.status_code == 401


async def test_two_game_workers_on_one_database_match_every_ticket_once(
    make_game_app: GameAppFactory, running: Running, mint: Minter
) -> None:
    """Two app instances (two workers: own engine, own loop) on the same database."""
    starts = [RecordingStart(), RecordingStart()]
    apps = [
        competition_app(
            make_game_app(matchmaker_poll_seconds=0.05, matchmaker_bot_after_seconds=0),
            start_match=start,
        )
        for start in starts
    ]
    handles = [f"w{i}" for i in range(20)]
    async with running(apps[0]) as first, running(apps[1]) as second:
        await add_players(apps[0], *handles)
        clients = (first, second)
        for index, handle in enumerate(handles):
            joined = await clients[index % 2].post(
                "/api/queue", json={}, headers=player_headers(mint, handle)
            )
            assert joined.status_code == 201
        async with asyncio.timeout(20):
            while True:
                async with apps[0].state.sessionmaker() as session:
                    waiting = list(
                        await session.scalars(
                            select(QueueTicket.id).where(QueueTicket.status == "waiting")
                        )
                    )
                if not waiting:
                    break
                await asyncio.sleep(0.05)
        async with apps[0].state.sessionmaker() as session:
            rows = list(await session.scalars(select(QueueTicket)))
    per_match: dict[str | None, int] = {}
    for row in rows:
        per_match[row.match_id] = per_match.get(row.match_id, 0) + 1
    assert sorted(per_match.values()) == [2] * 10
    assert len(starts[0].requests) + len(starts[1].requests) == 10
    # Each request's players are exactly the two tickets that share its match.
    seated = [{r.first_player_id, r.second_player_id} for start in starts for r in start.requests]
    assert len({frozenset(s) for s in seated}) == 10


async def test_a_pair_whose_ticket_went_away_puts_the_other_back_to_waiting(
    app: FastAPI, client: httpx.AsyncClient, mint: Minter, start: RecordingStart
) -> None:
    """The set-based claim takes what is still waiting; half a pair is released, not matched."""
    ids = await add_players(app, "alice", "bob", "carol", "dave")
    for handle in ("alice", "bob", "carol", "dave"):
        await client.post("/api/queue", json={}, headers=player_headers(mint, handle))
    matchmaker: Matchmaker = app.state.matchmaker
    now = datetime.now(UTC)
    async with app.state.sessionmaker() as session:
        plans = matchmaker.plan(await tickets.waiting_tickets(session, now=now))
    assert len(plans) == 2
    # One player of one planned pair cancels between the read and the claim.
    gone = plans[0].tickets[0].player_id
    handles = dict(zip(ids, ("alice", "bob", "carol", "dave"), strict=True))
    assert (
        await client.delete("/api/queue", headers=player_headers(mint, handles[gone]))
    ).is_success

    started = await matchmaker.start_planned(plans, now=now)

    assert [m.match_id for m in started] == [plans[1].match_id]
    assert [r.match_id for r in start.requests] == [plans[1].match_id]
    async with app.state.sessionmaker() as session:
        rows = {row.player_id: row for row in await session.scalars(select(QueueTicket))}
    partner = plans[0].tickets[1].player_id
    assert rows[gone].status == "cancelled"
    assert (rows[partner].status, rows[partner].match_id) == ("waiting", None)
    for seat in plans[1].tickets:
        assert (rows[seat.player_id].status, rows[seat.player_id].match_id) == (
            "matched",
            plans[1].match_id,
        )
