"""Player profiles: idempotent creation (for the portal's provisioning) and look-up by token."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyCore.auth.principal import Principal
from VEZEPyGame.db.models import Player


@dataclass(frozen=True)
class EnsureResult:
    player: Player
    created: bool


async def get_player(session: AsyncSession, *, handle: str) -> Player | None:
    return await session.scalar(select(Player).where(Player.handle == handle.lower()))


async def ensure_player(session: AsyncSession, *, handle: str, display_name: str) -> EnsureResult:
    """The player for `handle`, created with the table's defaults if missing (caller commits).

    An existing player is returned unchanged: provisioning retries must not overwrite what the
    player has since edited.
    """
    existing = await get_player(session, handle=handle)
    if existing is not None:
        return EnsureResult(existing, created=False)
    player = Player(handle=handle.lower(), display_name=display_name, created_at=datetime.now(UTC))
    try:
        async with session.begin_nested():
            session.add(player)
            await session.flush()
    except IntegrityError:
        # A concurrent call for the same handle won the race; theirs is the player.
        raced = await get_player(session, handle=handle)
        assert raced is not None
        return EnsureResult(raced, created=False)
    await session.refresh(player)  # the server defaults (region, colour, opt-in)
    return EnsureResult(player, created=True)


def handle_of(principal: Principal, *, mail_domain: str) -> str | None:
    """The handle a token speaks for: its `preferred_username` (OIDC Core 5.1), else the local
    part of its address when that address is in the local mail domain; None otherwise."""
    username = principal.claims.get("preferred_username")
    if isinstance(username, str) and username:
        return username.lower()
    address = principal.address
    if address is None:
        return None
    local, _, domain = address.rpartition("@")
    if local and domain == mail_domain.lower():
        return local
    return None
