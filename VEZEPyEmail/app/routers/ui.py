"""Server-rendered pages. People sign in through the portal (single sign-on, VEZEPyCore.web.sso).

`/ui/inbox` is the webmail's home (the sign-on's landing page): the three-pane webmail of
`routers/webmail.py` opened on the inbox.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from VEZEPyCore.auth import scopes
from VEZEPyCore.auth.deps import check_scopes
from VEZEPyCore.errors import AppError, Forbidden
from VEZEPyCore.web.sso import PageUser
from VEZEPyCore.web.templates import render
from VEZEPyEmail.app.deps import BlobsDep, ConnectionDep, SettingsDep
from VEZEPyEmail.app.routers.webmail import Viewer, page_context, render_page
from VEZEPyEmail.app.security import authorize_mailbox, normalise_local_address

router = APIRouter(prefix="/ui", tags=["pages"], include_in_schema=False)


@router.get("/inbox", response_class=HTMLResponse)
async def inbox_page(
    request: Request,
    principal: PageUser,
    connection: ConnectionDep,
    blobs: BlobsDep,
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
        if address != (principal.address or "").lower():
            # The webmail shows one's own mailbox only; a service token has no page.
            raise Forbidden("the webmail shows your own mailbox only")
        context = await page_context(
            request,
            connection,
            blobs,
            Viewer(principal, address, str(handle)),
            folder="INBOX",
            query=None,
            selected=None,
        )
    except AppError as exc:
        return render(
            request,
            "signin_required.html",
            {"reason": exc.detail, "portal_url": portal_url, "handle": handle},
            status_code=exc.status_code,
        )
    return render_page(request, context)
