"""Server-rendered pages. The game itself is not built yet; the home page says so."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from VEZEPyGame.app.deps import RegistryDep
from VEZEPyGame.services.registry import portal_url, webmail_url

router = APIRouter(tags=["pages"], include_in_schema=False)


@router.get("/")
async def root(request: Request) -> RedirectResponse:
    """Send a browser at the bare host to the game's home page."""
    return RedirectResponse(request.url_for("home_page"), status_code=303)


@router.get("/ui", response_class=HTMLResponse)
async def home_page(request: Request, registry: RegistryDep) -> HTMLResponse:
    """The game's home page: what is coming, and the way back to the portal."""
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request,
        "home.html",
        {"portal_url": portal_url(registry), "webmail_url": webmail_url(registry)},
    )
