"""Redis killed and restarted under a running service (a private Redis, never the shared one).

- The event bus: an SSE stream opened before the outage stays open, and once Redis is back it
  gets events again without reconnecting (the bus subscribes again by itself), first an
  `events.lost` (webmail reloads), or on a match stream the whole state again.
- Work accepted during the outage is kept: a flag change and a send answer at once and are
  stored; only their live notification is missed (pub/sub keeps nothing).
- Rate limits while Redis is down count in the process (ADR 0018): bounded, not open, not
  closed, and answered without waiting on the dead Redis.
- `/ready` says Redis is down, quickly, and recovers by itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from tests.faults.servers import PrivateRedis, eventually, private_redis
from VEZEPyCore.events import EVENTS_LOST, RedisBus
from VEZEPyCore.security.ratelimit import RedisRateLimiter
from VEZEPyCore.testing import SseEvent, next_event, serve_app, sse_events
from VEZEPyEmail.app.main import create_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.db.models import OutboundTask
from VEZEPyGame.app.main import create_app as create_game_app
from VEZEPyGame.app.settings import GameSettings
from VEZEPyGame.tests.match_support import make_players, player_headers, start_match

ALICE = "alice@vezeuniqverse.com"
BOB = "bob@vezeuniqverse.com"
REMOTE = "carol@remote.example"
#: No request may wait longer than this on the dead Redis.
FAST_SECONDS = 5.0


@pytest.fixture
def redis() -> Iterator[PrivateRedis]:
    with private_redis() as server:
        yield server


async def _timed(request: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await request
    return response, time.monotonic() - started


async def test_sse_and_accepted_work_survive_a_redis_restart(
    redis: PrivateRedis, email_settings: EmailSettings, mint: Callable[..., str]
) -> None:
    settings = email_settings.model_copy(
        # The outbound worker stays off: the remote send below must stay in the queue to be seen.
        update={"redis_url": redis.url, "send_rate_limit": 3, "outbound_worker": False}
    )
    app = create_app(settings)
    admin = {"Authorization": f"Bearer {mint('svc:portal', scopes=('email.admin',))}"}
    token = mint(ALICE, scopes=("email.read", "email.send"))
    alice = {"Authorization": f"Bearer {token}"}
    async with (
        serve_app(app) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=20) as client,
    ):
        for address in (ALICE, BOB):
            created = await client.post("/api/mailboxes", json={"address": address}, headers=admin)
            assert created.status_code == 201, created.text
        listing = await client.get("/api/messages", params={"user": ALICE}, headers=alice)
        message_id = listing.json()["messages"][0]["id"]

        async with client.stream("GET", "/api/events", params={"access_token": token}) as stream:
            events = sse_events(stream)
            pending: asyncio.Task[SseEvent] | None = None

            async def next_event(seconds: float) -> SseEvent | None:
                """The next event within `seconds`, or None; a late one is kept for later."""
                nonlocal pending
                pending = pending or asyncio.ensure_future(anext(events))
                done, _ = await asyncio.wait({pending}, timeout=seconds)
                if not done:
                    return None
                event, pending = pending.result(), None
                return event

            assert await next_event(10) == ("ready", {"user": ALICE})
            assert (await client.post(f"/api/messages/{message_id}/star", headers=alice)).is_success
            event = await next_event(10)
            assert event is not None and event[0] == "message.updated"

            redis.kill()

            # /ready says so, quickly.
            ready, took = await _timed(client.get("/ready"))
            assert ready.status_code == 503 and took < FAST_SECONDS
            assert ready.json()["checks"]["redis"] != "ok"

            # Work accepted while Redis is down is answered at once and stored.
            read, took = await _timed(
                client.post(f"/api/messages/{message_id}/read", headers=alice)
            )
            assert read.status_code == 200, read.text
            assert took < FAST_SECONDS
            detail = await client.get(f"/api/messages/{message_id}", headers=alice)
            assert detail.json()["unread"] is False

            # Sending is limited by the process while the shared counter is away: the budget
            # (3) holds, the 4th is refused with the usual 429, and every accepted send is kept.
            # One send goes to a remote domain: its queue entry cannot be XADDed, the row is kept.
            sent: list[str] = []
            for number in range(4):
                to = [BOB, REMOTE] if number == 0 else [BOB]
                response, took = await _timed(
                    client.post(
                        "/api/send",
                        json={"to": to, "subject": f"during outage {number}", "text": "hi"},
                        headers=alice,
                    )
                )
                assert took < FAST_SECONDS
                if number < 3:
                    assert response.status_code == 202, response.text
                    sent.append(response.json()["message_id"])
                else:
                    assert response.status_code == 429, response.text
                    assert response.json()["error"] == "rate_limited"
                    assert "Retry-After" in response.headers

            # The SSE stream is still open (heartbeats); no event crosses a dead Redis.
            assert not stream.is_closed

            redis.start()  # same port, empty: a restarted cache

            async def redis_ready() -> bool:
                return (await client.get("/ready")).status_code == 200

            await eventually(redis_ready, seconds=20, what="/ready after the Redis restart")

            # The same stream gets events again: act until one arrives (the bus resubscribes
            # with backoff; an event published before that is lost, as pub/sub loses it).
            deadline = time.monotonic() + 20
            received: SseEvent | None = None
            unread = True
            lost = False
            while received is None or received[0] == EVENTS_LOST:
                assert time.monotonic() < deadline, "no event reached the SSE stream after Redis"
                lost = lost or (received is not None and received[0] == EVENTS_LOST)
                changed = await client.post(
                    f"/api/messages/{message_id}/read", json={"read": not unread}, headers=alice
                )
                unread = not unread
                assert changed.status_code == 200, changed.text
                received = await next_event(1.0)
            # The stream said it had missed events (the webmail then reloads), before the next.
            assert lost
            assert received[0] == "message.updated"
            assert received[1]["id"] == message_id and received[1]["user"] == ALICE
            if pending is not None:
                pending.cancel()

        # Nothing accepted during the outage was lost: Bob has each message Alice sent.
        bob = {"Authorization": f"Bearer {mint(BOB, scopes=('email.read',))}"}
        inbox = await client.get("/api/messages", params={"user": BOB}, headers=bob)
        subjects = {message["subject"] for message in inbox.json()["messages"]}
        assert {f"during outage {n}" for n in range(3)} <= subjects
        async with app.state.sessionmaker() as session:
            queued = (await session.scalars(select(OutboundTask.recipients))).all()
        assert [REMOTE] in queued  # the remote copy waits in the durable queue


async def test_rate_limiter_counts_locally_while_redis_is_away(redis: PrivateRedis) -> None:
    limiter = RedisRateLimiter.from_url(redis.url)
    try:
        first = await limiter.hit("fault:login", limit=3, window_seconds=60)
        assert first.allowed and first.count == 1

        redis.kill()
        started = time.monotonic()
        decisions = [await limiter.hit("fault:login", limit=3, window_seconds=60) for _ in range(4)]
        assert time.monotonic() - started < FAST_SECONDS  # no waiting on the dead Redis
        # Local windows start empty: 3 allowed, the 4th refused. Bounded, never open.
        assert [d.allowed for d in decisions] == [True, True, True, False]
        assert limiter.breaker.down

        redis.start()  # empty: the Redis counter of the window is gone with the restart

        async def back() -> bool:
            await asyncio.sleep(0)
            decision = await limiter.hit("fault:other", limit=100, window_seconds=60)
            return not limiter.breaker.down and decision.allowed

        await eventually(back, seconds=20, what="the limiter using Redis again")
        # The hits counted in the process during the outage still count in their window.
        after = await limiter.hit("fault:login", limit=3, window_seconds=60)
        assert not after.allowed and after.count == 5
    finally:
        await limiter.close()


async def test_a_hung_redis_costs_one_timeout_not_one_per_request(redis: PrivateRedis) -> None:
    """A stopped Redis accepts connections and never answers; the breaker skips it after one."""
    limiter = RedisRateLimiter.from_url(redis.url)
    try:
        assert (await limiter.hit("fault:hung", limit=10, window_seconds=60)).allowed
        redis.pause()
        started = time.monotonic()
        decisions = [
            await limiter.hit("fault:hung", limit=10, window_seconds=60) for _ in range(20)
        ]
        took = time.monotonic() - started
        # One read timeout (2 s), not twenty; every hit answered from the local count.
        assert took < 2 * FAST_SECONDS, f"{took:.1f}s for 20 hits against a hung Redis"
        assert [d.allowed for d in decisions] == [True] * 10 + [False] * 10
    finally:
        redis.resume()
        await limiter.close()


async def test_bus_subscription_resumes_and_publish_never_raises(redis: PrivateRedis) -> None:
    """Two buses stand for two worker processes; the subscriber lives through the outage."""
    publisher, subscriber = RedisBus.from_url(redis.url), RedisBus.from_url(redis.url)
    try:
        async with subscriber.subscribe("fault:room") as subscription:
            await publisher.publish("fault:room", {"n": 1})
            assert await subscription.get(wait_seconds=10) == ("fault:room", {"n": 1})

            redis.kill()
            started = time.monotonic()
            await publisher.publish("fault:room", {"n": 2})  # dropped, not raised
            assert time.monotonic() - started < FAST_SECONDS
            assert publisher.dropped >= 1

            redis.start()
            seen: list[tuple[str, dict[str, Any]]] = []
            deadline = time.monotonic() + 20
            number = 3
            while not any(channel == "fault:room" for channel, _ in seen):
                assert time.monotonic() < deadline, "the subscription never resumed"
                await publisher.publish("fault:room", {"n": number})
                if (received := await subscription.get(wait_seconds=0.5)) is not None:
                    seen.append(received)
                number += 1
            # First the word that events were lost, then the events published since.
            assert seen[0] == ("", {"type": EVENTS_LOST, "gaps": 1})
            assert seen[1][0] == "fault:room" and seen[1][1]["n"] >= 3
            assert subscription.gaps == 1
    finally:
        await publisher.close()
        await subscriber.close()


async def test_many_subscriptions_share_one_redis_connection(redis: PrivateRedis) -> None:
    """150 streams (past redis-py's pool of 100) on one bus: all get their events, one link."""
    publisher, subscriber = RedisBus.from_url(redis.url), RedisBus.from_url(redis.url)
    probe = Redis.from_url(redis.url)
    try:
        async with AsyncExitStack() as stack:
            subscriptions = [
                await stack.enter_async_context(subscriber.subscribe(f"fault:user:{n % 50}"))
                for n in range(150)
            ]
            clients = await probe.client_list()
            assert sum(1 for c in clients if c.get("cmd") in ("subscribe", "ping")) <= 1
            for n in range(50):
                await publisher.publish(f"fault:user:{n}", {"n": n})
            for index, subscription in enumerate(subscriptions):
                received = await subscription.get(wait_seconds=10)
                assert received == (f"fault:user:{index % 50}", {"n": index % 50})
        assert subscriber.subscriber_count("fault:user:0") == 0
    finally:
        await probe.aclose()
        await publisher.close()
        await subscriber.close()


async def test_a_match_stream_sends_the_whole_state_again_after_a_redis_restart(
    redis: PrivateRedis, game_settings: GameSettings, mint: Callable[..., str]
) -> None:
    app = create_game_app(game_settings.model_copy(update={"redis_url": redis.url}))
    async with (
        serve_app(app) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=20) as client,
    ):
        ids = await make_players(app, "dora", "eve")
        match_id = await start_match(app, first=ids["dora"], second=ids["eve"])
        dora = player_headers(mint, "dora")
        async with client.stream("GET", f"/api/matches/{match_id}/events", headers=dora) as stream:
            events = sse_events(stream)
            first = await next_event(events)
            assert first[0] == "state" and first[1]["id"] == match_id
            redis.kill()
            # A move while Redis is away: stored, its event lost.
            moved = await client.post(
                f"/api/matches/{match_id}/moves", json={"column": 3}, headers=dora
            )
            assert moved.status_code == 200, moved.text
            redis.start()
            # Nobody moves again: only the bus coming back can bring this.
            again = await next_event(events, seconds=30)
            assert again[0] == "state" and again[1]["moves"] == [3]
