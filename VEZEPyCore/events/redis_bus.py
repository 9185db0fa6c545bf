"""The event bus over Redis pub/sub, so every worker and replica sees every event.

One process holds one subscriber connection, whatever the number of subscriptions: each channel
is SUBSCRIBEd once, while at least one local subscription wants it (UNSUBSCRIBEd after the
last leaves), and its messages are handed to the local subscriptions in the process. Thousands
of SSE streams therefore cost one Redis connection, not one each (a pool of 100 used to refuse
the 101st).

Redis may restart under a running service. Publishing then drops the event (events are
notifications; the work they announce is already stored) instead of failing the request that
stored it. The subscriber connection outlives the outage: its pump reconnects with backoff and
subscribes every wanted channel again, so an SSE stream that stayed open gets events again once
Redis is back. Events published while Redis was away are not replayed (pub/sub keeps nothing):
each subscription then yields one `events.lost` event (bus.EVENTS_LOST), so its consumer can
refetch what it shows, and `Subscription.gaps` counts the outages. A failure of the subscriber
side never trips the publisher's breaker (ADR 0018).
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
        #: The subscriber connection's client; without retries of its own, so the pump sees
        #: every lost link (events published meanwhile are gone, and it counts that gap).
        self._listener = listener if listener is not None else client
        self._breaker = Breaker("event bus")
        self._listen_breaker = Breaker("event bus subscriptions")
        #: Events dropped because Redis was unavailable when they were published.
        self.dropped = 0
        self._local: dict[str, set[Subscription]] = {}
        self._pubsub: redis_asyncio.client.PubSub | None = None
        self._subscribed: set[str] = set()
        #: Serialises SUBSCRIBE/UNSUBSCRIBE and reconnects on the one subscriber connection.
        self._lock = asyncio.Lock()
        self._wanted = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._connected_before = False
        #: Set by close(): the pump's loops end on it even if a cancellation is swallowed (a
        #: cancel landing as redis-py's read timeout fires comes back as a plain timeout).
        self._closing = False

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

    def subscriber_count(self, channel: str) -> int:
        return len(self._local.get(channel, ()))

    @asynccontextmanager
    async def _subscription(self, channels: tuple[str, ...]) -> AsyncIterator[Subscription]:
        subscription = Subscription(channels)
        for channel in channels:  # synchronous: no await can interleave with the bookkeeping
            self._local.setdefault(channel, set()).add(subscription)
        self._wanted.set()
        try:
            self._start_pump()
            # SUBSCRIBE is sent on the subscriber connection before this returns, so later
            # publishes reach us. If Redis is away right now, the pump subscribes every wanted
            # channel once it is back, and the subscription is live from then on.
            if self._listen_breaker.allows() and await self._ensure_connected():
                with contextlib.suppress(RedisError, OSError):
                    await self._reconcile()
            yield subscription
        finally:
            for channel in channels:
                members = self._local.get(channel)
                if members is not None:
                    members.discard(subscription)
                    if not members:
                        del self._local[channel]
            if not self._local:
                self._wanted.clear()
            # Best effort: a channel left subscribed is dropped by the next reconcile.
            with contextlib.suppress(RedisError, OSError):
                await self._reconcile()

    def _start_pump(self) -> None:
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._run(), name="redis-bus-subscriber")

    async def _reconcile(self) -> None:
        """SUBSCRIBE the channels local subscriptions want and UNSUBSCRIBE the rest."""
        async with self._lock:
            pubsub = self._pubsub
            if pubsub is None:
                return  # the pump subscribes everything when it connects
            wanted = set(self._local)
            missing = sorted(wanted - self._subscribed)
            extra = sorted(self._subscribed - wanted)
            if missing:
                await pubsub.subscribe(*missing)
                self._subscribed.update(missing)
            if extra:
                await pubsub.unsubscribe(*extra)
                self._subscribed.difference_update(extra)

    async def _ensure_connected(self) -> bool:
        """Open the subscriber connection with every wanted channel; False if Redis is away."""
        async with self._lock:
            if self._pubsub is not None:
                return True
            wanted = sorted(self._local)
            if not wanted:
                return False
            pubsub = self._listener.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*wanted)
            except (RedisError, OSError) as exc:
                self._listen_breaker.failed(exc)
                await _close(pubsub)
                return False
            except BaseException:  # cancelled while connecting: do not leak the connection
                await _close(pubsub)
                raise
            self._pubsub, self._subscribed = pubsub, set(wanted)
            self._listen_breaker.succeeded()
            if self._connected_before:
                for members in self._local.values():
                    for subscription in members:
                        subscription.lose_events()
                log.info("resubscribed %d channels after a Redis outage", len(wanted))
            self._connected_before = True
            return True

    async def _disconnect(self) -> None:
        async with self._lock:
            if self._pubsub is not None:
                await _close(self._pubsub)
            self._pubsub, self._subscribed = None, set()

    async def _run(self) -> None:
        """The subscriber connection's pump: connect, forward, reconnect after a loss."""
        delay = RESUBSCRIBE_FIRST_DELAY
        try:
            while not self._closing:
                pubsub = self._pubsub
                if pubsub is None:
                    await self._wanted.wait()
                    if not await self._ensure_connected():
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, RESUBSCRIBE_MAX_DELAY)
                        continue
                    delay = RESUBSCRIBE_FIRST_DELAY
                    continue
                try:
                    await self._forward(pubsub)
                except (RedisError, OSError) as exc:
                    self._listen_breaker.failed(exc)
                    await self._disconnect()
                except Exception:  # never let the one pump die: every stream depends on it
                    log.exception("event bus subscriber failed; reconnecting")
                    await self._disconnect()
                    await asyncio.sleep(delay)
        finally:
            if self._pubsub is not None:
                await _close(self._pubsub)
                self._pubsub, self._subscribed = None, set()

    async def _forward(self, pubsub: redis_asyncio.client.PubSub) -> None:
        """Deliver messages until the connection fails (raises) or the bus closes."""
        while not self._closing:
            message = await pubsub.get_message(timeout=IDLE_CHECK_SECONDS)
            if message is None:
                # Quiet link: a PING proves it is still there (a restarted Redis may have
                # closed it without the read noticing yet).
                await pubsub.ping()
                continue
            if message.get("type") != "message":
                continue
            channel = message["channel"]
            if isinstance(channel, bytes):
                channel = channel.decode()
            members = self._local.get(channel)
            if not members:
                continue
            try:
                event = json.loads(message["data"])
            except (TypeError, ValueError):
                log.warning("dropping a non-JSON event on %s", channel)
                continue
            payload = event if isinstance(event, dict) else {"data": event}
            for subscription in tuple(members):
                subscription.deliver(channel, payload)

    async def ping(self) -> None:
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            self._breaker.failed(exc)
            raise
        self._breaker.succeeded()

    async def close(self) -> None:
        self._closing = True
        if self._pump is not None:
            self._pump.cancel()
            # The loops see `_closing` within one idle check even if the cancel was swallowed.
            done, _ = await asyncio.wait({self._pump}, timeout=IDLE_CHECK_SECONDS + 2)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.warning("event bus subscriber ended with %r", task.exception())
            self._pump = None
        await self._client.aclose()
        if self._listener is not self._client:
            await self._listener.aclose()


async def _close(pubsub: redis_asyncio.client.PubSub) -> None:
    with contextlib.suppress(RedisError, OSError):
        await pubsub.aclose()  # type: ignore[no-untyped-call]
