"""Fixed-window rate limits, in memory (one process) or in Redis (every worker shares them).

Callers pick the key ("login:ip:1.2.3.4", "login:account:alice") and the budget; a refused hit
says how long until the window resets, which becomes the 429's `Retry-After`.

While Redis is unavailable the Redis limiter counts in this process's memory instead (ADR 0018):
neither fail-open (a Redis restart would lift the brute-force limits on log-in, tokens and SMTP
AUTH exactly when nobody watches them) nor fail-closed (a cache restart would refuse every
log-in and every send). Each worker then allows the budget on its own, so N workers allow up to
N times the budget until Redis is back; the limits are bounded throughout, and requests do not
wait on the dead Redis (a breaker skips it for a second after each failure).
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

import redis.asyncio as redis_asyncio
from redis.exceptions import RedisError

from VEZEPyCore.errors import TooManyRequests
from VEZEPyCore.events.redis_client import Breaker, fail_fast_client

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
        #: Counts while Redis is unavailable: this process's own windows.
        self.fallback = MemoryRateLimiter()
        self.breaker = Breaker("rate limits")

    @classmethod
    def from_url(cls, url: str) -> RedisRateLimiter:
        return cls(fail_fast_client(url))

    async def hit(self, key: str, *, limit: int, window_seconds: int) -> RateDecision:
        if self.breaker.allows():
            try:
                decision = await self._hit_redis(key, limit=limit, window_seconds=window_seconds)
            except (RedisError, OSError) as exc:
                self.breaker.failed(exc)
            else:
                self.breaker.succeeded()
                local = await self.fallback.peek(key)
                if local:  # hits counted here during an outage still count in their window
                    count = decision.count + local
                    return RateDecision(count <= limit, count, decision.retry_after_seconds)
                return decision
        return await self.fallback.hit(key, limit=limit, window_seconds=window_seconds)

    async def _hit_redis(self, key: str, *, limit: int, window_seconds: int) -> RateDecision:
        name = self.PREFIX + key
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            # NX: only the first hit of a window sets its expiry (Redis 7).
            pipe.expire(name, window_seconds, nx=True)
            pipe.ttl(name)
            count, _, ttl = await pipe.execute()
        return RateDecision(int(count) <= limit, int(count), max(1, int(ttl)))

    async def peek(self, key: str) -> int:
        if self.breaker.allows():
            try:
                value = await self._client.get(self.PREFIX + key)
            except (RedisError, OSError) as exc:
                self.breaker.failed(exc)
            else:
                self.breaker.succeeded()
                return (int(value) if value is not None else 0) + await self.fallback.peek(key)
        return await self.fallback.peek(key)

    async def reset(self, key: str) -> None:
        await self.fallback.reset(key)
        if self.breaker.allows():
            try:
                await self._client.delete(self.PREFIX + key)
            except (RedisError, OSError) as exc:
                self.breaker.failed(exc)
            else:
                self.breaker.succeeded()

    async def close(self) -> None:
        await self._client.aclose()


def make_rate_limiter(redis_url: str | None) -> RateLimiter:
    return RedisRateLimiter.from_url(redis_url) if redis_url else MemoryRateLimiter()
