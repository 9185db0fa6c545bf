"""Fair-play flags for admins: an API and a page (scope `game.admin`, which the portal grants
to its admin role)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from VEZEPyCore.auth import scopes
from VEZEPyCore.web.sso import PageUser
from VEZEPyCore.web.templates import render
from VEZEPyGame.app.deps import RegistryDep, SessionDep
from VEZEPyGame.app.routers.store import page_context, page_refusal
from VEZEPyGame.app.security import AdminPrincipal
from VEZEPyGame.services.telemetry import rules, service
from VEZEPyGame.services.telemetry.schemas import FlagList

router = APIRouter(tags=["admin"])
#: Empty means "any" (what the page's filter form sends when left blank).
RuleQuery = Annotated[str | None, Query(pattern="^(" + "|".join(rules.RULES) + ")?$")]
HandleQuery = Annotated[str | None, Query(max_length=64)]
PAGE_SIZE = 50


@router.get("/api/admin/flags", response_model=FlagList, summary="Fair-play flags, newest first")
async def list_flags(
    _principal: AdminPrincipal,
    session: SessionDep,
    rule: RuleQuery = None,
    player: HandleQuery = None,
    before_id: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_FLAG_PAGE)] = PAGE_SIZE,
) -> FlagList:
    """Flags raised by the rules; filter by `rule` or `player` handle, page with `before_id`."""
    flags = await service.list_flags(
        session, limit=limit, before_id=before_id, rule=rule or None, player_handle=player or None
    )
    return FlagList(flags=flags)


@router.get("/ui/admin/flags", response_class=HTMLResponse, include_in_schema=False)
async def flags_page(
    request: Request,
    principal: PageUser,
    session: SessionDep,
    registry: RegistryDep,
    rule: RuleQuery = None,
    player: HandleQuery = None,
    before_id: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    """The same flags as a table an admin can filter."""
    refused = page_refusal(request, registry, principal, scopes.GAME_ADMIN)
    if refused is not None:
        return refused
    flags = await service.list_flags(
        session,
        limit=PAGE_SIZE,
        before_id=before_id,
        rule=rule or None,
        player_handle=player or None,
    )
    return render(
        request,
        "admin_flags.html",
        {
            **page_context(registry, principal),
            "flags": flags,
            "rules": rules.RULES,
            "rule": rule or "",
            "player": player or "",
            "next_before": flags[-1].id if len(flags) == PAGE_SIZE else None,
        },
    )
