"""The signed-in person's pages: the home dashboard and the copilot."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from VEZEPyCore.services.registry import ServiceEntry
from VEZEPyCore.web.deps import SessionDep
from VEZEPyCore.web.templates import render
from VEZEPyUniQVerse.app.routers.page_route import PageRoute
from VEZEPyUniQVerse.services.accounts.deps import CurrentUserDep
from VEZEPyUniQVerse.services.copilot.tokens import copilot_token
from VEZEPyUniQVerse.services.hub.service import build_dashboard

router = APIRouter(tags=["home"], include_in_schema=False, route_class=PageRoute)


def service_links(request: Request) -> dict[str, str]:
    """Public URLs of the pages the panels link to ("" when a service is not registered)."""
    entries: dict[str, ServiceEntry] = {
        entry.name: entry for entry in request.app.state.registry.entries()
    }

    def url(name: str, path: str) -> str:
        entry = entries.get(name)
        return f"{entry.public_url}{path}" if entry is not None else ""

    return {
        "inbox": url("email", "/ui/inbox"),
        "play": url("game", "/ui/play"),
        "queue": url("game", "/ui/queue"),
        "profile": url("game", "/ui/profile"),
        "leaderboard": url("game", "/ui/leaderboard"),
        "history": url("game", "/ui/history"),
        "match": url("game", "/ui/matches/"),
    }


@router.get("/home", response_class=HTMLResponse, summary="Your home: mail, game and services")
async def home_page(request: Request, viewer: CurrentUserDep, db: SessionDep) -> HTMLResponse:
    dashboard = await build_dashboard(request.app.state, db, user=viewer.user)
    settings = request.app.state.settings
    return render(
        request,
        "home.html",
        {
            "viewer": viewer,
            "active": "dashboard",
            "dashboard": dashboard,
            "address": f"{viewer.user.handle}@{settings.mail_domain}",
            "links": service_links(request),
        },
    )


@router.get("/copilot", response_class=HTMLResponse, summary="Talk to the copilot")
async def copilot_page(request: Request, viewer: CurrentUserDep) -> HTMLResponse:
    return render(
        request,
        "copilot.html",
        {
            "viewer": viewer,
            "active": "copilot",
            # A short-lived portal token for the WebSocket handshake (browsers cannot send
            # cookies' worth of identity as a bearer header on a WebSocket).
            "ws_token": await copilot_token(request.app.state, user=viewer.user),
        },
    )
