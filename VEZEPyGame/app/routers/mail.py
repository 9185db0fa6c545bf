"""The brief's Game -> Email proxy: a player's mail, read through the Game API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from VEZEPyCore.contracts.email import MessageList
from VEZEPyGame.app.deps import EmailClientDep
from VEZEPyGame.app.security import ReadMailPrincipal

router = APIRouter(prefix="/email", tags=["mail"])

_UPSTREAM_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Email rejected the address (not of the local domain)"},
    403: {"description": "Missing `game.read_mail`, or Email refused that mailbox"},
    404: {"description": "Email has no such mailbox"},
    502: {"description": "Email is unreachable or failed"},
    504: {"description": "Email did not answer in time"},
}


@router.get(
    "/mail",
    response_model=MessageList,
    summary="List a mailbox's messages from the Email service",
    responses=_UPSTREAM_ERRORS,
)
async def list_mail(
    principal: ReadMailPrincipal,
    email: EmailClientDep,
    user: Annotated[str, Query(min_length=3, max_length=320, description="Mailbox address")],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> MessageList:
    """Email's `GET /api/messages`, called with the caller's own token (Email authorises)."""
    return await email.list_messages(token=principal.token, user=user, limit=limit, offset=offset)
