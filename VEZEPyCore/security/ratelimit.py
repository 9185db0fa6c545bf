"""Fixed-window rate limits, in memory (one process) or in Redis (every worker shares them).

Callers pick the key ("login:ip:1.2.3.4", "login:account:alice") and the budget; a refused hit
says how long until the window resets, which becomes the 429's `Retry-After`.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

import redis.asyncio as redis_asyncio

from VEZEPyCore.errors import TooManyRequests

#: Above this many live keys the in-memory limiter drops expired windows before adding more.
MEMORY_PRUNE_THRESHOLD = 10_000


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    count: int
    retry_after_seconds: int

    def raise_if_refused(self, what: str) -> None:
        if not self.allowed:
            raise TooManyRequests(
                f"too many {what}; try again in {self.retry_after_seconds} s",
                headers={"Retry-After": str(self.retry_after_seconds)},
            )


class RateLimiter(ABC):
    @abstractmethod
    async def hit(self, key: str, *, limit: int, window_seconds: int) -> RateDecision:
        """Count one event for `key`; allowed while the window holds at most `limit`."""

    @abstractmethod
    async def peek(self, key: str) -> int:
        """How many events the current window of `key` holds."""

    @abstractmethod
    async def reset(self, key: str) -> None: ...

    async def close(self) -> None:
        return


class MemoryRateLimiter(RateLimiter):
    def __init__(self) -> None:
        self._windows: dict[str, tuple[float, int]] = {}

    async def hit(self, key: str, *, limit: int, window_seconds: int) -> RateDecision:
        now = time.monotonic()
        expires, count = self._windows.get(key, (0.0, 0))
        if expires <= now:
            if len(self._windows) > MEMORY_PRUNE_THRESHOLD:
                self._windows = {k: v for k, v in self._windows.items() if v[0] > now}
            expires, count = now + window_seconds, 0
        count += 1
        self._windows[key] = (expires, count)
        return RateDecision(count <= limit, count, max(1, math.ceil(expires - now)))

    async def peek(self, key: str) -> int:
        expires, count = self._windows.get(key, (0.0, 0))
        return count if expires > time.monotonic() else 0

    async def reset(self, key: str) -> None:
        self._windows.pop(key, None)


class RedisRateLimiter(RateLimiter):
    PREFIX = "veze:ratelimit:"

    def __init__(self, client: redis_asyncio.Redis) -> None:
        self._client = client

    @classmethod
    def from_url(cls, url: str) -> RedisRateLimiter:
        return cls(redis_asyncio.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2))

    async def hit(self, key: str, *, limit: int, window_seconds: int) -> RateDecision:
        name = self.PREFIX + key
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            # NX: only the first hit of a window sets its expiry (Redis 7).
            pipe.expire(name, window_seconds, nx=True)
            pipe.ttl(name)
            count, _, ttl = await pipe.execute()
        return RateDecision(int(count) <= limit, int(count), max(1, int(ttl)))

    async def peek(self, key: str) -> int:
        value = await self._client.get(self.PREFIX + key)
        return int(value) if value is not None else 0

    async def reset(self, key: str) -> None:
        await self._client.delete(self.PREFIX + key)

    async def close(self) -> None:
        await self._client.aclose()


def make_rate_limiter(redis_url: str | None) -> RateLimiter:
    return RedisRateLimiter.from_url(redis_url) if redis_url else MemoryRateLimiter()
