"""Rate limits and log-in lockout for the account endpoints.

Built on VEZEPyCore's fixed-window limiter, so with Redis every worker shares the counts.
Per IP: a cap on attempts from one address. Per account: a cap on attempts at one handle, and
a lockout with back-off: `lockout_after` failures in a row lock the handle for 30 s, the next
lock lasts twice as long, up to 15 minutes. Keys use the handle as typed (lower-cased), whether
or not such an account exists, so the limits reveal nothing about which accounts exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from VEZEPyCore.security.ratelimit import RateDecision, RateLimiter


@dataclass(frozen=True)
class Budget:
    limit: int
    window_seconds: int


@dataclass(frozen=True)
class ThrottlePolicy:
    login_per_ip: Budget = Budget(20, 60)
    login_per_account: Budget = Budget(10, 60)
    signup_per_ip: Budget = Budget(20, 600)
    second_factor_per_account: Budget = Budget(10, 300)
    #: Re-authentication on the account page (change password, disable 2FA).
    password_check_per_account: Budget = Budget(10, 600)
    lockout_after: int = 5
    #: Failures older than this no longer count towards a lock.
    failure_window_seconds: int = 900
    first_lock_seconds: int = 30
    max_lock_seconds: int = 900
    #: How long a past lock keeps the next one doubled.
    lock_memory_seconds: int = 86_400


DEFAULT_POLICY = ThrottlePolicy()


def lock_seconds(level: int, policy: ThrottlePolicy = DEFAULT_POLICY) -> int:
    """Length of the `level`-th lock in a row (1-based): 30, 60, 120, ... capped."""
    return int(min(policy.first_lock_seconds * 2 ** max(0, level - 1), policy.max_lock_seconds))


class Throttle:
    def __init__(self, limiter: RateLimiter, policy: ThrottlePolicy = DEFAULT_POLICY) -> None:
        self.limiter = limiter
        self.policy = policy

    async def _hit(self, key: str, budget: Budget) -> RateDecision:
        return await self.limiter.hit(key, limit=budget.limit, window_seconds=budget.window_seconds)

    async def login_ip(self, ip: str) -> RateDecision:
        return await self._hit(f"login:ip:{ip}", self.policy.login_per_ip)

    async def login_account(self, handle: str) -> RateDecision:
        return await self._hit(f"login:account:{handle}", self.policy.login_per_account)

    async def signup_ip(self, ip: str) -> RateDecision:
        return await self._hit(f"signup:ip:{ip}", self.policy.signup_per_ip)

    async def second_factor(self, handle: str) -> RateDecision:
        return await self._hit(f"totp:account:{handle}", self.policy.second_factor_per_account)

    async def password_check(self, handle: str) -> RateDecision:
        return await self._hit(f"reauth:account:{handle}", self.policy.password_check_per_account)

    async def locked_for(self, handle: str) -> int:
        """Seconds until `handle` may try again; 0 when it is not locked."""
        key = f"login:lock:{handle}"
        if await self.limiter.peek(key) == 0:
            return 0
        # A limit-0 hit leaves the window's end alone and reports how long it still runs. Should
        # the lock lapse between the two calls, the hit starts a harmless 1-second one.
        decision = await self.limiter.hit(key, limit=0, window_seconds=1)
        return decision.retry_after_seconds

    async def record_failure(self, handle: str) -> int:
        """Count a failed log-in; returns the lock's length when this failure starts one."""
        failures = await self.limiter.hit(
            f"login:failures:{handle}",
            limit=self.policy.lockout_after - 1,
            window_seconds=self.policy.failure_window_seconds,
        )
        if failures.allowed:
            return 0
        level = await self.limiter.hit(
            f"login:locks:{handle}",
            limit=1_000_000,
            window_seconds=self.policy.lock_memory_seconds,
        )
        seconds = lock_seconds(level.count, self.policy)
        await self.limiter.reset(f"login:failures:{handle}")
        await self.limiter.reset(f"login:lock:{handle}")
        await self.limiter.hit(f"login:lock:{handle}", limit=0, window_seconds=seconds)
        return seconds

    async def record_success(self, handle: str) -> None:
        for kind in ("failures", "locks"):
            await self.limiter.reset(f"login:{kind}:{handle}")
