"""Redis clients that fail fast, and a breaker that stops every caller waiting on a dead Redis.

A killed Redis refuses connections at once, but a hung one (stopped, or behind a broken link)
accepts them and never answers: each command then waits for the socket timeout. Here the read
timeout is 2 s and only a lost connection is retried, once and quickly (a pooled connection the
restart dropped is re-dialled); a timeout is not retried. After any failure the `Breaker` tells
callers to skip Redis for a moment instead of each paying the timeout again. The bus and the
rate limiter share these (ADR 0018).
"""

from __future__ import annotations

import logging
import time

import redis.asyncio as redis_asyncio
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 1.0
COMMAND_TIMEOUT_SECONDS = 2.0
#: After a failure, callers skip Redis this long before trying it again.
BREAKER_COOLDOWN_SECONDS = 1.0


def fail_fast_client(url: str, *, retries: int = 1) -> redis_asyncio.Redis:
    """A client whose commands raise within a few seconds at worst when Redis is away.

    `retries=0` for a connection whose owner reconnects itself (a subscription's pump must see
    every lost link: events published meanwhile are gone, and it counts that gap).
    """
    return redis_asyncio.Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=COMMAND_TIMEOUT_SECONDS,
        retry=Retry(
            ExponentialWithJitterBackoff(base=0.01, cap=0.1),
            retries=retries,
            supported_errors=(RedisConnectionError,),
        ),
        health_check_interval=30,
    )


class Breaker:
    """Remembers a recent Redis failure so callers can skip Redis until a cool-down passes.

    One failed call opens it; the first call after the cool-down is let through as a probe,
    and its success closes it. Logs once per outage, not once per request.
    """

    def __init__(self, name: str, cooldown_seconds: float = BREAKER_COOLDOWN_SECONDS) -> None:
        self.name = name
        self.cooldown_seconds = cooldown_seconds
        self._open_until = 0.0
        self._down = False
        #: Failures seen since start (a counter operators can read from the object).
        self.failures = 0

    def allows(self) -> bool:
        return time.monotonic() >= self._open_until

    @property
    def down(self) -> bool:
        return self._down

    def failed(self, error: BaseException) -> None:
        self.failures += 1
        self._open_until = time.monotonic() + self.cooldown_seconds
        if not self._down:
            self._down = True
            log.warning("redis unavailable for %s (%s: %s)", self.name, type(error).__name__, error)

    def succeeded(self) -> None:
        self._open_until = 0.0
        if self._down:
            self._down = False
            log.warning("redis available again for %s", self.name)
