"""The player's mail preferences: match summaries by mail are opt-in."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict

from VEZEPyCore.auth import scopes
from VEZEPyCore.auth.deps import check_scopes
from VEZEPyCore.security.csrf import require_csrf
from VEZEPyCore.web.sso import PageUser
from VEZEPyGame.app.deps import SessionDep, SettingsDep
from VEZEPyGame.app.security import PlayPrincipal
from VEZEPyGame.services.store.service import require_player

router = APIRouter(tags=["notifications"])
API_PATH = "/api/players/me/notifications"


class NotificationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: A summary (result, opponent, rating change, replay link) in your mailbox after a match.
    match_summary_mail: bool


@router.get(API_PATH, response_model=NotificationSettings, summary="Your mail preferences")
async def read_notifications(
    principal: PlayPrincipal, session: SessionDep, settings: SettingsDep
) -> NotificationSettings:
    """Whether match summaries come by mail (off until you switch them on)."""
    player = await require_player(session, principal, mail_domain=settings.mail_domain)
    return NotificationSettings(match_summary_mail=player.mail_opt_in)


@router.put(API_PATH, response_model=NotificationSettings, summary="Switch match-summary mail")
async def update_notifications(
    body: NotificationSettings, principal: PlayPrincipal, session: SessionDep, settings: SettingsDep
) -> NotificationSettings:
    """Opt in to (or out of) a summary mail after each finished match."""
    player = await require_player(session, principal, mail_domain=settings.mail_domain)
    player.mail_opt_in = body.match_summary_mail
    await session.commit()
    return NotificationSettings(match_summary_mail=player.mail_opt_in)


@router.post("/ui/notifications", include_in_schema=False)
async def update_notifications_page(
    request: Request,
    principal: PageUser,
    session: SessionDep,
    settings: SettingsDep,
    match_summary_mail: Annotated[bool, Form()],
) -> RedirectResponse:
    """The profile page's switch: set the preference, then back to the profile."""
    await require_csrf(request)
    check_scopes(principal, (scopes.GAME_PLAY,))
    player = await require_player(session, principal, mail_domain=settings.mail_domain)
    player.mail_opt_in = match_summary_mail
    await session.commit()
    return RedirectResponse(request.url_for("profile_page"), status_code=303)
