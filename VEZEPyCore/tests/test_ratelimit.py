from __future__ import annotations

import pytest

from VEZEPyCore.errors import TooManyRequests
from VEZEPyCore.security.ratelimit import (
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
)


async def exercise(limiter: RateLimiter, key: str) -> None:
    await limiter.reset(key)
    decisions = [await limiter.hit(key, limit=3, window_seconds=60) for _ in range(4)]
    assert [decision.allowed for decision in decisions] == [True, True, True, False]
    assert await limiter.peek(key) == 4
    refused = decisions[-1]
    assert 1 <= refused.retry_after_seconds <= 60
    with pytest.raises(TooManyRequests) as raised:
        refused.raise_if_refused("log-in attempts")
    assert raised.value.status_code == 429
    assert raised.value.headers["Retry-After"] == str(refused.retry_after_seconds)
    await limiter.reset(key)
    assert (await limiter.hit(key, limit=3, window_seconds=60)).allowed


async def test_memory_limiter_counts_a_window() -> None:
    await exercise(MemoryRateLimiter(), "login:ip:127.0.0.1")


async def test_redis_limiter_is_shared_between_workers(redis_url: str) -> None:
    first, second = RedisRateLimiter.from_url(redis_url), RedisRateLimiter.from_url(redis_url)
    try:
        await exercise(first, "test:shared")
        await first.reset("test:shared")
        await first.hit("test:shared", limit=1, window_seconds=60)
        assert not (await second.hit("test:shared", limit=1, window_seconds=60)).allowed
    finally:
        await first.reset("test:shared")
        await first.close()
        await second.close()
