"""Fair-play flags for admins: an API and a page (scope `game.admin`, which the portal grants
to its admin role). An open flag is closed as resolved or dismissed; who closed it, when and
why stay on the flag, for every admin to see."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from VEZEPyCore.auth import scopes
from VEZEPyCore.auth.principal import Principal
from VEZEPyCore.errors import AppError
from VEZEPyCore.security.csrf import require_csrf
from VEZEPyCore.web.sso import PageUser
from VEZEPyCore.web.templates import render
from VEZEPyGame.app.deps import RegistryDep, SessionDep
from VEZEPyGame.app.routers.store import page_context, page_refusal
from VEZEPyGame.app.security import AdminPrincipal
from VEZEPyGame.services.telemetry import rules, service
from VEZEPyGame.services.telemetry.schemas import FlagList, FlagRead, FlagReview

router = APIRouter(tags=["admin"])
#: Empty means "any" (what the page's filter form sends when left blank).
RuleQuery = Annotated[str | None, Query(pattern="^(" + "|".join(rules.RULES) + ")?$")]
HandleQuery = Annotated[str | None, Query(max_length=64)]
StatusQuery = Annotated[str | None, Query(pattern="^(open|resolved|dismissed)?$")]
PAGE_SIZE = 50


@router.get("/api/admin/flags", response_model=FlagList, summary="Fair-play flags, newest first")
async def list_flags(
    _principal: AdminPrincipal,
    session: SessionDep,
    rule: RuleQuery = None,
    player: HandleQuery = None,
    status: StatusQuery = None,
    before_id: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_FLAG_PAGE)] = PAGE_SIZE,
) -> FlagList:
    """Flags raised by the rules; filter by `rule`, `player` handle or `status`, page with
    `before_id`."""
    flags = await service.list_flags(
        session,
        limit=limit,
        before_id=before_id,
        rule=rule or None,
        player_handle=player or None,
        status=status or None,
    )
    return FlagList(flags=flags)


def reviewer_of(principal: Principal) -> str:
    """The name a review is recorded under: the admin's handle, else their token's subject."""
    return str(principal.claims.get("preferred_username") or principal.subject)


@router.post(
    "/api/admin/flags/{flag_id}/review",
    response_model=FlagRead,
    summary="Resolve or dismiss a fair-play flag",
    responses={
        404: {"description": "No such flag"},
        409: {"description": "`flag_reviewed`: the flag was closed already"},
    },
)
async def review_flag(
    flag_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: FlagReview,
    principal: AdminPrincipal,
    session: SessionDep,
) -> FlagRead:
    """Close an open flag as `resolved` (acted on) or `dismissed` (a false alarm), with an
    optional note; the admin and the time are recorded with it."""
    flag = await service.review_flag(
        session,
        flag_id=flag_id,
        decision=body.decision,
        reviewer=reviewer_of(principal),
        note=body.note,
    )
    await session.commit()
    return flag


@router.get("/ui/admin/flags", response_class=HTMLResponse, include_in_schema=False)
async def flags_page(
    request: Request,
    principal: PageUser,
    session: SessionDep,
    registry: RegistryDep,
    rule: RuleQuery = None,
    player: HandleQuery = None,
    status: StatusQuery = None,
    before_id: Annotated[int | None, Query(ge=1)] = None,
    error: str | None = None,
) -> HTMLResponse:
    """The same flags as a table an admin can filter, close, and audit."""
    refused = page_refusal(request, registry, principal, scopes.GAME_ADMIN)
    if refused is not None:
        return refused
    flags = await service.list_flags(
        session,
        limit=PAGE_SIZE,
        before_id=before_id,
        rule=rule or None,
        player_handle=player or None,
        status=status or None,
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
            "status": status or "",
            "next_before": flags[-1].id if len(flags) == PAGE_SIZE else None,
            "error": error == "reviewed",
        },
    )


@router.post(
    "/ui/admin/flags/{flag_id}/review",
    include_in_schema=False,
    dependencies=[Depends(require_csrf)],
)
async def review_flag_from_page(
    request: Request,
    flag_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    principal: PageUser,
    session: SessionDep,
    registry: RegistryDep,
    decision: Annotated[str, Form(pattern="^(resolved|dismissed)$")],
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """The page's Resolve and Dismiss buttons (a form with the CSRF token)."""
    refused = page_refusal(request, registry, principal, scopes.GAME_ADMIN)
    if refused is not None:
        return refused
    target = str(request.url_for("flags_page"))
    try:
        await service.review_flag(
            session,
            flag_id=flag_id,
            decision=decision,
            reviewer=reviewer_of(principal),
            note=note,
        )
        await session.commit()
    except AppError:
        return RedirectResponse(f"{target}?error=reviewed", status_code=303)
    return RedirectResponse(f"{target}#flag-{flag_id}", status_code=303)
