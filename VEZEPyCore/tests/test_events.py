from __future__ import annotations

import asyncio

from VEZEPyCore.events import EVENTS_LOST, EventBus, InProcessBus, RedisBus, Subscription


async def exchange(bus: EventBus) -> None:
    async with bus.subscribe("room:a", "room:b") as subscription:
        await bus.publish("room:a", {"n": 1})
        await bus.publish("room:other", {"n": 2})
        await bus.publish("room:b", {"n": 3})
        first = await asyncio.wait_for(subscription.get(), 5)
        second = await asyncio.wait_for(subscription.get(), 5)
    assert first == ("room:a", {"n": 1})
    assert second == ("room:b", {"n": 3})


async def test_in_process_bus_delivers_subscribed_channels_in_order() -> None:
    bus = InProcessBus()
    await exchange(bus)
    assert bus.subscriber_count("room:a") == 0


async def test_redis_bus_delivers_through_a_real_redis(redis_url: str) -> None:
    bus = RedisBus.from_url(redis_url)
    try:
        await bus.ping()
        await exchange(bus)
    finally:
        await bus.close()


async def test_redis_bus_reaches_another_connection(redis_url: str) -> None:
    """Two buses stand for two worker processes sharing one Redis."""
    publisher, subscriber = RedisBus.from_url(redis_url), RedisBus.from_url(redis_url)
    try:
        async with subscriber.subscribe("veze:test:cross") as subscription:
            await publisher.publish("veze:test:cross", {"hello": "worker"})
            received = await subscription.get(wait_seconds=5)
            assert received == ("veze:test:cross", {"hello": "worker"})
    finally:
        await publisher.close()
        await subscriber.close()


async def test_slow_subscriber_drops_oldest_instead_of_blocking() -> None:
    bus = InProcessBus()
    async with bus.subscribe("flood") as subscription:
        for n in range(1005):
            await bus.publish("flood", {"n": n})
        oldest_kept = await subscription.get(wait_seconds=1)
    assert oldest_kept == ("flood", {"n": 5})


async def test_lost_events_are_said_in_order_with_the_others() -> None:
    subscription = Subscription(("room:a",))
    subscription.deliver("room:a", {"n": 1})
    subscription.lose_events()
    subscription.deliver("room:a", {"n": 2})
    received = [await subscription.get(1) for _ in range(3)]
    assert received == [
        ("room:a", {"n": 1}),
        ("", {"type": EVENTS_LOST, "gaps": 1}),
        ("room:a", {"n": 2}),
    ]
    assert subscription.gaps == 1
