"""The player's mail preferences: match summaries by mail are opt-in."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from VEZEPyGame.app.deps import SessionDep, SettingsDep
from VEZEPyGame.app.security import PlayPrincipal
from VEZEPyGame.services.store.service import require_player

router = APIRouter(prefix="/api/players/me/notifications", tags=["notifications"])


class NotificationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: A summary (result, opponent, rating change, replay link) in your mailbox after a match.
    match_summary_mail: bool


@router.get("", response_model=NotificationSettings, summary="Your mail preferences")
async def read_notifications(
    principal: PlayPrincipal, session: SessionDep, settings: SettingsDep
) -> NotificationSettings:
    """Whether match summaries come by mail (off until you switch them on)."""
    player = await require_player(session, principal, mail_domain=settings.mail_domain)
    return NotificationSettings(match_summary_mail=player.mail_opt_in)


@router.put("", response_model=NotificationSettings, summary="Switch match-summary mail")
async def update_notifications(
    body: NotificationSettings, principal: PlayPrincipal, session: SessionDep, settings: SettingsDep
) -> NotificationSettings:
    """Opt in to (or out of) a summary mail after each finished match."""
    player = await require_player(session, principal, mail_domain=settings.mail_domain)
    player.mail_opt_in = body.match_summary_mail
    await session.commit()
    return NotificationSettings(match_summary_mail=player.mail_opt_in)
