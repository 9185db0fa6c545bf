"""The event bus over Redis pub/sub, so every worker and replica sees every event."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import redis.asyncio as redis_asyncio

from VEZEPyCore.events.bus import Event, EventBus, Subscription

log = logging.getLogger(__name__)


class RedisBus(EventBus):
    def __init__(self, client: redis_asyncio.Redis) -> None:
        self._client = client

    @classmethod
    def from_url(cls, url: str) -> RedisBus:
        return cls(
            redis_asyncio.Redis.from_url(
                url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
            )
        )

    async def publish(self, channel: str, event: Event) -> None:
        await self._client.publish(channel, json.dumps(event, separators=(",", ":")))

    def subscribe(self, *channels: str) -> AbstractAsyncContextManager[Subscription]:
        return self._subscription(channels)

    @asynccontextmanager
    async def _subscription(self, channels: tuple[str, ...]) -> AsyncIterator[Subscription]:
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        # SUBSCRIBE is acknowledged before this returns, so later publishes reach us.
        await pubsub.subscribe(*channels)
        subscription = Subscription(channels)
        pump = asyncio.create_task(self._pump(pubsub, subscription))
        try:
            yield subscription
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            with contextlib.suppress(Exception):
                await pubsub.unsubscribe()
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _pump(self, pubsub: redis_asyncio.client.PubSub, subscription: Subscription) -> None:
        async for message in pubsub.listen():
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
        await self._client.ping()

    async def close(self) -> None:
        await self._client.aclose()
