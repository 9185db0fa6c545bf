"""The player a verified caller speaks for, and the handles of players by id."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyCore.auth.principal import Principal
from VEZEPyCore.errors import NotFound
from VEZEPyGame.db.models import Player
from VEZEPyGame.services.players.service import get_player, handle_of


async def find_caller(
    session: AsyncSession, principal: Principal, *, mail_domain: str
) -> Player | None:
    handle = handle_of(principal, mail_domain=mail_domain)
    return await get_player(session, handle=handle) if handle else None


async def require_caller(
    session: AsyncSession, principal: Principal, *, mail_domain: str
) -> Player:
    """The caller's player; 404 when the account has no player profile yet."""
    player = await find_caller(session, principal, mail_domain=mail_domain)
    if player is None:
        raise NotFound("no player profile for this account yet")
    return player


async def handles(session: AsyncSession, player_ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {player_id for player_id in player_ids if player_id is not None}
    if not wanted:
        return {}
    rows = await session.execute(select(Player.id, Player.handle).where(Player.id.in_(wanted)))
    return {int(row[0]): str(row[1]) for row in rows}
