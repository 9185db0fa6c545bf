"""Check an account password or app password for another service (SMTP AUTH, RFC 4954).

Only a service token of `veze-email-service` with the `portal.verify_password` scope may ask.
Attempts are limited per client IP and failures per handle, in keys of their own, so a
password-guessing mail client cannot lock a person out of the web log-in.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyCore.security.ratelimit import RateDecision, RateLimiter
from VEZEPyUniQVerse.services.accounts.service import verify_app_password

#: The scope a service token needs for the password check (portal vocabulary, not Core's).
VERIFY_PASSWORD_SCOPE = "portal.verify_password"  # noqa: S105 - a scope name
#: The only client whose service token may check passwords.
EMAIL_SERVICE_CLIENT = "veze-email-service"
MAX_HANDLE_LENGTH = 64


@dataclass(frozen=True)
class VerifyBudget:
    attempts_per_ip: int = 30
    failures_per_handle: int = 10
    window_seconds: int = 300


DEFAULT_BUDGET = VerifyBudget()


@dataclass(frozen=True)
class VerifiedUser:
    handle: str
    email: str


def normalise_handle(raw: str, *, mail_domain: str) -> str | None:
    """The handle of `raw` ("alice" or "alice@<mail domain>"), or None when it cannot be one."""
    local, at, domain = raw.strip().rpartition("@")
    if at and domain.lower() != mail_domain.lower():
        return None
    handle = (local if at else raw.strip()).lower()
    if not handle or len(handle) > MAX_HANDLE_LENGTH:
        return None
    return handle


async def check_budget(
    limiter: RateLimiter, *, ip: str, handle: str, budget: VerifyBudget = DEFAULT_BUDGET
) -> RateDecision:
    """Count one attempt from `ip`; refused when `ip` or `handle` is over its budget."""
    decision = await limiter.hit(
        f"verify-password:ip:{ip}",
        limit=budget.attempts_per_ip,
        window_seconds=budget.window_seconds,
    )
    if not decision.allowed:
        return decision
    failures = await limiter.peek(f"verify-password:handle:{handle}")
    if failures >= budget.failures_per_handle:
        return RateDecision(False, failures, budget.window_seconds)
    return decision


async def record_failure(
    limiter: RateLimiter, *, handle: str, budget: VerifyBudget = DEFAULT_BUDGET
) -> None:
    await limiter.hit(
        f"verify-password:handle:{handle}",
        limit=budget.failures_per_handle,
        window_seconds=budget.window_seconds,
    )


async def verify_password_for_service(
    db: AsyncSession, *, handle: str, password: str, mail_domain: str
) -> VerifiedUser | None:
    """The account when `password` (account or app password) opens it; commits last use."""
    user = await verify_app_password(db, handle=handle, password=password)
    if user is None:
        return None
    await db.commit()  # an app password's last_used_at
    return VerifiedUser(handle=user.handle, email=f"{user.handle}@{mail_domain}")
