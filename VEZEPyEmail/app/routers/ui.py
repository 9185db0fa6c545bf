"""Server-rendered pages. People sign in through the portal (single sign-on, VEZEPyCore.web.sso)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from VEZEPyCore.auth import scopes
from VEZEPyCore.auth.deps import check_scopes
from VEZEPyCore.errors import AppError
from VEZEPyCore.web.sso import PageUser
from VEZEPyCore.web.templates import render
from VEZEPyEmail.app.deps import ConnectionDep, SettingsDep
from VEZEPyEmail.app.security import authorize_mailbox, normalise_local_address
from VEZEPyEmail.services.messages import service

router = APIRouter(prefix="/ui", tags=["pages"], include_in_schema=False)


@router.get("/inbox", response_class=HTMLResponse)
async def inbox_page(
    request: Request,
    principal: PageUser,
    connection: ConnectionDep,
    settings: SettingsDep,
    user: Annotated[str | None, Query(max_length=320)] = None,
) -> HTMLResponse:
    """The signed-in person's inbox; anyone else is sent to sign in at the portal first."""
    portal_url = request.app.state.registry.public_url("portal")
    handle = principal.claims.get("preferred_username") or principal.address or principal.subject
    try:
        check_scopes(principal, (scopes.EMAIL_READ,))
        address = normalise_local_address(user or principal.address or "", settings.mail_domain)
        authorize_mailbox(principal, address)
        messages = await service.list_messages(
            connection, address=address, folder="INBOX", limit=50, offset=0, query=None
        )
    except AppError as exc:
        return render(
            request,
            "signin_required.html",
            {"reason": exc.detail, "portal_url": portal_url, "handle": handle},
            status_code=exc.status_code,
        )
    return render(
        request,
        "inbox.html",
        {
            "address": address,
            "messages": messages,
            "unread": sum(1 for message in messages if message.unread),
            "portal_url": portal_url,
            "handle": handle,
        },
    )
