"""The event bus interface and its in-process implementation.

Events are fire-and-forget notifications (SSE fan-out, live counters). Work that must not be
lost goes through the durable queues, never through the bus.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

Event = dict[str, Any]
#: A slow subscriber may fall behind by this many events before the oldest are dropped.
SUBSCRIBER_BUFFER = 1000
#: The type of the event a subscription yields, on channel `LOST_CHANNEL`, once its transport
#: has lost events (a Redis outage: what was published meanwhile is gone). A consumer that
#: shows state built from events refetches that state when it sees one.
EVENTS_LOST = "events.lost"
LOST_CHANNEL = ""


class Subscription:
    """Events for a set of channels, in order, via `get()` or async iteration."""

    def __init__(self, channels: tuple[str, ...]) -> None:
        self.channels = channels
        #: Outages of the transport this subscription lived through; events published during
        #: one were not delivered (a consumer that must not miss any refetches after a gap).
        self.gaps = 0
        self._queue: asyncio.Queue[tuple[str, Event]] = asyncio.Queue(SUBSCRIBER_BUFFER)

    def lose_events(self) -> None:
        """The transport lost events for this subscription: count it and tell the consumer."""
        self.gaps += 1
        self.deliver(LOST_CHANNEL, {"type": EVENTS_LOST, "gaps": self.gaps})

    def deliver(self, channel: str, event: Event) -> None:
        if self._queue.full():
            self._queue.get_nowait()  # drop the oldest rather than block the publisher
        self._queue.put_nowait((channel, event))

    async def get(self, wait_seconds: float | None = None) -> tuple[str, Event] | None:
        """The next (channel, event), or None when `wait_seconds` pass first."""
        try:
            return await asyncio.wait_for(self._queue.get(), wait_seconds)
        except TimeoutError:
            return None

    def __aiter__(self) -> AsyncIterator[tuple[str, Event]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[tuple[str, Event]]:
        while True:
            yield await self._queue.get()


class EventBus(ABC):
    @abstractmethod
    async def publish(self, channel: str, event: Event) -> None: ...

    @abstractmethod
    def subscribe(self, *channels: str) -> AbstractAsyncContextManager[Subscription]:
        """Subscribe; the subscription is live (will see later publishes) once entered."""

    async def ping(self) -> None:
        """Raise if the bus cannot carry events right now (an in-process bus always can)."""
        return

    async def close(self) -> None:
        return None


class InProcessBus(EventBus):
    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = {}

    async def publish(self, channel: str, event: Event) -> None:
        for subscription in tuple(self._subscribers.get(channel, ())):
            subscription.deliver(channel, event)

    def subscribe(self, *channels: str) -> AbstractAsyncContextManager[Subscription]:
        return self._subscription(channels)

    @asynccontextmanager
    async def _subscription(self, channels: tuple[str, ...]) -> AsyncIterator[Subscription]:
        subscription = Subscription(channels)
        for channel in channels:
            self._subscribers.setdefault(channel, set()).add(subscription)
        try:
            yield subscription
        finally:
            for channel in channels:
                members = self._subscribers.get(channel)
                if members is not None:
                    members.discard(subscription)
                    if not members:
                        del self._subscribers[channel]

    def subscriber_count(self, channel: str) -> int:
        return len(self._subscribers.get(channel, ()))
