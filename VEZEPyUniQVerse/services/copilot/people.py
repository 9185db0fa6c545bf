"""Which portal account a verified copilot token speaks for."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from VEZEPyCore.auth.principal import Principal
from VEZEPyUniQVerse.db.models import User


async def account_of(sessionmaker: Any, principal: Principal, *, mail_domain: str) -> User | None:
    """The enabled account behind `principal`, or None (a service, a stranger, a disabled user).

    Tokens the portal issues name the account id as the subject; tokens minted elsewhere with
    the shared development secret may name the address instead.
    """
    async with sessionmaker() as db:
        user: User | None
        if principal.subject.isdigit():
            user = await db.get(User, int(principal.subject))
        else:
            local, _, domain = (principal.address or "").lower().partition("@")
            if domain != mail_domain.lower() or not local:
                return None
            user = await db.scalar(select(User).where(User.handle == local))
    return user if user is not None and not user.disabled else None
