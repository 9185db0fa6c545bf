"""Player profiles: created by the portal's provisioning, read by the player."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from VEZEPyCore.errors import NotFound
from VEZEPyGame.app.deps import SessionDep, SettingsDep
from VEZEPyGame.app.security import AdminPrincipal, PlayPrincipal
from VEZEPyGame.services.players import service
from VEZEPyGame.services.players.schemas import PlayerCreate, PlayerProvisionRead, PlayerRead

router = APIRouter(prefix="/api/players", tags=["players"])


@router.post(
    "",
    response_model=PlayerProvisionRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a player (idempotent: 200 when it already exists)",
    responses={
        200: {"description": "The player already existed; returned unchanged"},
        403: {"description": "The token lacks `game.admin`"},
    },
)
async def create_player(
    body: PlayerCreate, _principal: AdminPrincipal, session: SessionDep, response: Response
) -> PlayerProvisionRead:
    """Give a portal account its player profile, with the default region and colour."""
    result = await service.ensure_player(
        session, handle=body.handle, display_name=body.display_name
    )
    await session.commit()
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return PlayerProvisionRead(
        **PlayerRead.model_validate(result.player).model_dump(), created=result.created
    )


@router.get(
    "/me",
    response_model=PlayerRead,
    summary="The caller's own player profile",
    responses={404: {"description": "No player for this account (not provisioned yet)"}},
)
async def read_my_player(
    principal: PlayPrincipal, session: SessionDep, settings: SettingsDep
) -> PlayerRead:
    """The profile of the player the token speaks for (`preferred_username` or address)."""
    handle = service.handle_of(principal, mail_domain=settings.mail_domain)
    player = await service.get_player(session, handle=handle) if handle else None
    if player is None:
        raise NotFound("no player profile for this account yet")
    return PlayerRead.model_validate(player)
