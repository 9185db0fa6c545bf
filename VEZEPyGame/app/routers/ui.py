"""Server-rendered pages. The game itself is not built yet; the home page says so.

People sign in through the portal (single sign-on, VEZEPyCore.web.sso); the home page also
serves visitors, with a sign-in button.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from VEZEPyCore.web.sso import OptionalPageUser
from VEZEPyGame.app.deps import RegistryDep
from VEZEPyGame.services.registry import portal_url, webmail_url

router = APIRouter(tags=["pages"], include_in_schema=False)


@router.get("/")
async def root(request: Request) -> RedirectResponse:
    """Send a browser at the bare host to the game's home page."""
    return RedirectResponse(request.url_for("home_page"), status_code=303)


@router.get("/ui", response_class=HTMLResponse)
async def home_page(
    request: Request, registry: RegistryDep, principal: OptionalPageUser
) -> HTMLResponse:
    """The game's home page: who is signed in, what is coming, the way back to the portal."""
    handle = None
    if principal is not None:
        handle = (
            principal.claims.get("preferred_username") or principal.address or principal.subject
        )
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request,
        "home.html",
        {
            "portal_url": portal_url(registry),
            "webmail_url": webmail_url(registry),
            "handle": handle,
        },
    )
