"""The admin console: find accounts, disable/enable them, grant roles, read the audit log.

Only accounts with the admin role get in (a 403 page for everyone else); every change is
audited with the admin as the actor.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse

from VEZEPyCore.errors import AppError, NotFound
from VEZEPyCore.security.csrf import require_csrf
from VEZEPyCore.web.deps import SessionDep
from VEZEPyCore.web.templates import render
from VEZEPyUniQVerse.app.routers.page_route import PageRoute, error_page
from VEZEPyUniQVerse.db.models import User
from VEZEPyUniQVerse.services.accounts import admin
from VEZEPyUniQVerse.services.accounts.deps import AdminDep
from VEZEPyUniQVerse.services.accounts.service import ROLES, get_user_by_handle, list_sessions
from VEZEPyUniQVerse.services.accounts.sessions import SessionInfo, client_ip
from VEZEPyUniQVerse.services.audit.service import list_events, record

router = APIRouter(prefix="/admin", tags=["admin"], include_in_schema=False, route_class=PageRoute)

CsrfDep = Annotated[None, Depends(require_csrf)]
MAX_PAGE = 100_000

NOTICES = {
    "disabled": "The account is disabled and all its sessions are signed out.",
    "enabled": "The account is enabled again.",
    "role-granted": "The role is granted.",
    "role-revoked": "The role is revoked.",
    "unchanged": "Nothing changed: the account already was that way.",
}


def _page_number(raw: int) -> int:
    return min(max(1, raw), MAX_PAGE)


async def _target(db: SessionDep, handle: str) -> User:
    user = await get_user_by_handle(db, handle=handle)
    if user is None:
        raise NotFound(f"There is no account with the handle {handle[:64]!r}.")
    return user


def _to_user(handle: str, notice: str) -> RedirectResponse:
    return RedirectResponse(
        f"/admin/users/{handle}?notice={notice}", status_code=status.HTTP_303_SEE_OTHER
    )


@router.get("", response_class=HTMLResponse, summary="Find accounts")
async def list_users(
    request: Request, db: SessionDep, info: AdminDep, q: str = "", page: int = 1
) -> HTMLResponse:
    """Accounts by handle prefix, 25 to a page."""
    result = await admin.search_users(db, prefix=q, page=_page_number(page))
    return render(
        request,
        "admin_users.html",
        {"viewer": info, "active": "admin", "q": q, "result": result},
    )


async def _user_page(
    request: Request,
    db: SessionDep,
    info: SessionInfo,
    user: User,
    *,
    notice: str = "",
    error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    events = await list_events(db, actor=user.handle, per_page=10)
    return render(
        request,
        "admin_user.html",
        {
            "viewer": info,
            "active": "admin",
            "user": user,
            "roles": ROLES,
            "sessions": await list_sessions(db, user=user),
            "events": events.events,
            "notice": NOTICES.get(notice, ""),
            "error": error,
        },
        status_code=status_code,
    )


@router.get("/users/{handle}", response_class=HTMLResponse, summary="One account")
async def show_user(
    request: Request, handle: str, db: SessionDep, info: AdminDep, notice: str = ""
) -> HTMLResponse:
    """An account's state, roles, sessions and latest events, with the actions on it."""
    return await _user_page(request, db, info, await _target(db, handle), notice=notice)


@router.post("/users/{handle}/disable", response_class=HTMLResponse, summary="Disable an account")
async def disable_user(
    request: Request, handle: str, _csrf: CsrfDep, db: SessionDep, info: AdminDep
) -> Response:
    """Disable an account and sign it out everywhere (sessions and refresh tokens)."""
    return await _set_disabled(request, db, info, handle, disabled=True)


@router.post("/users/{handle}/enable", response_class=HTMLResponse, summary="Enable an account")
async def enable_user(
    request: Request, handle: str, _csrf: CsrfDep, db: SessionDep, info: AdminDep
) -> Response:
    """Let a disabled account log in again."""
    return await _set_disabled(request, db, info, handle, disabled=False)


async def _set_disabled(
    request: Request, db: SessionDep, info: SessionInfo, handle: str, *, disabled: bool
) -> Response:
    user = await _target(db, handle)
    if user.disabled == disabled:
        return _to_user(user.handle, "unchanged")
    try:
        ended = await admin.set_disabled(db, user=user, disabled=disabled, by=info.user)
    except AppError as exc:
        return await _user_page(
            request, db, info, user, error=exc.detail, status_code=exc.status_code
        )
    record(
        db,
        actor=info.user.handle,
        action="admin.disable" if disabled else "admin.enable",
        target=user.handle,
        ip=client_ip(request),
        detail={"sessions_ended": ended} if disabled else {},
    )
    await db.commit()
    return _to_user(user.handle, "disabled" if disabled else "enabled")


@router.post("/users/{handle}/roles", response_class=HTMLResponse, summary="Grant or revoke a role")
async def set_role(
    request: Request,
    handle: str,
    _csrf: CsrfDep,
    db: SessionDep,
    info: AdminDep,
    role: Annotated[str, Form()] = "",
    grant: Annotated[str, Form()] = "",
) -> Response:
    """Grant (`grant=1`) or revoke (`grant=0`) one role."""
    user = await _target(db, handle)
    if grant not in {"0", "1"}:
        return error_page(request, status.HTTP_400_BAD_REQUEST, "Choose to grant or to revoke.")
    granted = grant == "1"
    try:
        changed = await admin.set_role(db, user=user, role=role, granted=granted, by=info.user)
    except AppError as exc:
        return await _user_page(
            request, db, info, user, error=exc.detail, status_code=exc.status_code
        )
    if not changed:
        return _to_user(user.handle, "unchanged")
    record(
        db,
        actor=info.user.handle,
        action="admin.role_granted" if granted else "admin.role_revoked",
        target=user.handle,
        ip=client_ip(request),
        detail={"role": role, "roles": list(user.roles)},
    )
    await db.commit()
    return _to_user(user.handle, "role-granted" if granted else "role-revoked")


@router.get("/audit", response_class=HTMLResponse, summary="The audit log")
async def audit_log(
    request: Request,
    db: SessionDep,
    info: AdminDep,
    actor: str = "",
    action: str = "",
    page: int = 1,
) -> HTMLResponse:
    """Security events, newest first, filtered by actor and action prefix."""
    result = await list_events(db, actor=actor, action=action, page=_page_number(page))
    filters: dict[str, Any] = {"actor": actor, "action": action}
    return render(
        request,
        "admin_audit.html",
        {"viewer": info, "active": "admin", "filters": filters, "result": result},
    )
