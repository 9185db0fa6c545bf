"""The event bus over Redis pub/sub, so every worker and replica sees every event.

Redis may restart under a running service. Publishing then drops the event (events are
notifications; the work they announce is already stored) instead of failing the request that
stored it. A subscription outlives the outage: its pump reconnects with backoff and subscribes
again by itself, so an SSE stream that stayed open gets events again once Redis is back. Events
published while Redis was away are not replayed (pub/sub keeps nothing); `Subscription.gaps`
counts the outages a subscriber lived through (ADR 0018).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import redis.asyncio as redis_asyncio
from redis.exceptions import RedisError

from VEZEPyCore.events.bus import Event, EventBus, Subscription
from VEZEPyCore.events.redis_client import Breaker, fail_fast_client

log = logging.getLogger(__name__)

#: Reconnect delays of a subscription's pump: doubling from the first to the last.
RESUBSCRIBE_FIRST_DELAY = 0.05
RESUBSCRIBE_MAX_DELAY = 2.0
#: How often an idle pump checks that its connection is alive (a PING on the subscribed link).
IDLE_CHECK_SECONDS = 5.0


class RedisBus(EventBus):
    def __init__(
        self, client: redis_asyncio.Redis, listener: redis_asyncio.Redis | None = None
    ) -> None:
        self._client = client
        #: Subscriptions' connections; without retries of its own, so the pump sees each drop.
        self._listener = listener if listener is not None else client
        self._breaker = Breaker("event bus")
        #: Events dropped because Redis was unavailable when they were published.
        self.dropped = 0

    @classmethod
    def from_url(cls, url: str) -> RedisBus:
        return cls(fail_fast_client(url), fail_fast_client(url, retries=0))

    async def publish(self, channel: str, event: Event) -> None:
        if not self._breaker.allows():
            self.dropped += 1
            return
        try:
            await self._client.publish(channel, json.dumps(event, separators=(",", ":")))
        except (RedisError, OSError) as exc:
            self.dropped += 1
            self._breaker.failed(exc)
            return
        self._breaker.succeeded()

    def subscribe(self, *channels: str) -> AbstractAsyncContextManager[Subscription]:
        return self._subscription(channels)

    @asynccontextmanager
    async def _subscription(self, channels: tuple[str, ...]) -> AsyncIterator[Subscription]:
        subscription = Subscription(channels)
        # SUBSCRIBE is acknowledged before this returns, so later publishes reach us. If Redis
        # is away right now, the pump keeps trying and the subscription is live once it is back.
        pubsub = await self._try_subscribe(channels)
        pump = asyncio.create_task(self._pump(pubsub, subscription))
        try:
            yield subscription
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    async def _try_subscribe(self, channels: tuple[str, ...]) -> redis_asyncio.client.PubSub | None:
        pubsub = self._listener.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(*channels)
        except (RedisError, OSError) as exc:
            self._breaker.failed(exc)
            await _close(pubsub)
            return None
        except BaseException:  # cancelled while subscribing: do not leak the connection
            await _close(pubsub)
            raise
        self._breaker.succeeded()
        return pubsub

    async def _pump(
        self, pubsub: redis_asyncio.client.PubSub | None, subscription: Subscription
    ) -> None:
        delay = RESUBSCRIBE_FIRST_DELAY
        try:
            while True:
                if pubsub is None:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RESUBSCRIBE_MAX_DELAY)
                    pubsub = await self._try_subscribe(subscription.channels)
                    if pubsub is None:
                        continue
                    subscription.gaps += 1
                    log.info("resubscribed to %s after a Redis outage", subscription.channels)
                delay = RESUBSCRIBE_FIRST_DELAY
                try:
                    await self._forward(pubsub, subscription)
                except (RedisError, OSError) as exc:
                    self._breaker.failed(exc)
                    await _close(pubsub)
                    pubsub = None
        finally:
            if pubsub is not None:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.unsubscribe()
                await _close(pubsub)

    async def _forward(
        self, pubsub: redis_asyncio.client.PubSub, subscription: Subscription
    ) -> None:
        """Deliver messages until the connection fails (raises) or the task is cancelled."""
        while True:
            message = await pubsub.get_message(timeout=IDLE_CHECK_SECONDS)
            if message is None:
                # Quiet link: a PING proves it is still there (a restarted Redis may have
                # closed it without the read noticing yet).
                await pubsub.ping()
                continue
            if message.get("type") != "message":
                continue
            try:
                event = json.loads(message["data"])
            except (TypeError, ValueError):
                log.warning("dropping a non-JSON event on %s", message.get("channel"))
                continue
            channel = message["channel"]
            if isinstance(channel, bytes):
                channel = channel.decode()
            subscription.deliver(channel, event if isinstance(event, dict) else {"data": event})

    async def ping(self) -> None:
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            self._breaker.failed(exc)
            raise
        self._breaker.succeeded()

    async def close(self) -> None:
        await self._client.aclose()
        if self._listener is not self._client:
            await self._listener.aclose()


async def _close(pubsub: redis_asyncio.client.PubSub) -> None:
    with contextlib.suppress(RedisError, OSError):
        await pubsub.aclose()  # type: ignore[no-untyped-call]
