"""The account page: profile, password, app passwords, sessions, two-factor authentication.

Every change is a POST with a CSRF token that redirects back (post/redirect/get), except the
two answers that carry a secret shown once (a new app password, new recovery codes): those are
rendered straight from the POST and never stored in the clear.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse

from VEZEPyCore.errors import AppError
from VEZEPyCore.security.csrf import require_csrf
from VEZEPyCore.web.deps import SessionDep
from VEZEPyCore.web.templates import render
from VEZEPyUniQVerse.app.routers.page_route import PageRoute
from VEZEPyUniQVerse.services.accounts import service, totp
from VEZEPyUniQVerse.services.accounts.deps import CurrentUserDep, ThrottleDep
from VEZEPyUniQVerse.services.accounts.sessions import SessionInfo, client_ip
from VEZEPyUniQVerse.services.audit.service import record
from VEZEPyUniQVerse.services.provisioning.queue import provisioning_status

router = APIRouter(tags=["account"], include_in_schema=False, route_class=PageRoute)

CsrfDep = Annotated[None, Depends(require_csrf)]

NOTICES = {
    "profile": "Your display name is saved.",
    "password": "Your password is changed. Every other session was signed out.",
    "app-password-revoked": "The app password is revoked; clients using it are locked out.",
    "session-revoked": "The session is signed out.",
    "totp-enabled": "Two-factor authentication is on.",
    "totp-disabled": "Two-factor authentication is off.",
}


def _back(notice: str, section: str) -> RedirectResponse:
    return RedirectResponse(
        f"/account?notice={notice}#{section}", status_code=status.HTTP_303_SEE_OTHER
    )


async def _account_page(
    request: Request,
    db: SessionDep,
    info: SessionInfo,
    *,
    notice: str = "",
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    user = info.user
    settings = request.app.state.settings
    response = render(
        request,
        "account.html",
        {
            "viewer": info,
            "active": "account",
            "user": user,
            "address": f"{user.handle}@{settings.mail_domain}",
            "notice": NOTICES.get(notice, ""),
            "errors": errors or {},
            "app_passwords": await service.list_app_passwords(db, user=user),
            "sessions": [
                (web_session, service.describe_user_agent(web_session.user_agent))
                for web_session in await service.list_sessions(db, user=user)
            ],
            "current_sid": info.sid,
            "recovery_left": await totp.unused_recovery_codes(db, user=user)
            if user.totp_enabled
            else 0,
            "provisioning": await provisioning_status(db, handle=user.handle),
        },
        status_code=status_code,
    )
    response.headers.update(headers or {})
    return response


async def _refused(
    request: Request, db: SessionDep, info: SessionInfo, section: str, exc: AppError
) -> HTMLResponse:
    # Nothing was changed before the refusal; the request's session is discarded uncommitted.
    return await _account_page(
        request,
        db,
        info,
        errors={section: exc.detail},
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _check_reauth(throttle: ThrottleDep, info: SessionInfo) -> None:
    """Password checks on this page are guessing chances too: cap them per account."""
    decision = await throttle.password_check(info.user.handle)
    if not decision.allowed:
        decision.raise_if_refused("password checks")


async def _record_wrong_password(
    request: Request, db: SessionDep, info: SessionInfo, attempted: str
) -> None:
    record(
        db,
        actor=info.user.handle,
        action="reauth.failure",
        target=info.user.handle,
        outcome="denied",
        ip=client_ip(request),
        detail={"attempted": attempted},
    )
    await db.commit()


@router.get("/account", response_class=HTMLResponse, summary="The account page")
async def account_page(
    request: Request, db: SessionDep, info: CurrentUserDep, notice: str = ""
) -> HTMLResponse:
    """Show the account: profile, security, app passwords, sessions, provisioning."""
    return await _account_page(request, db, info, notice=notice)


@router.post("/account/profile", response_class=HTMLResponse, summary="Change the display name")
async def update_profile(
    request: Request,
    _csrf: CsrfDep,
    db: SessionDep,
    info: CurrentUserDep,
    display_name: Annotated[str, Form()] = "",
) -> Response:
    """Save a new display name."""
    try:
        await service.set_display_name(db, user=info.user, display_name=display_name)
    except AppError as exc:
        return await _refused(request, db, info, "profile", exc)
    await db.commit()
    return _back("profile", "profile")


@router.post("/account/password", response_class=HTMLResponse, summary="Change the password")
async def change_password(
    request: Request,
    _csrf: CsrfDep,
    db: SessionDep,
    info: CurrentUserDep,
    throttle: ThrottleDep,
    current: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    """Set a new password (the current one is required) and sign out every other session."""
    try:
        await _check_reauth(throttle, info)
        ended = await service.change_password(
            db,
            user=info.user,
            current=current,
            new=password,
            confirm=confirm,
            keep_session_id=info.session_id,
        )
    except AppError as exc:
        if isinstance(exc, service.WrongPassword):
            await _record_wrong_password(request, db, info, "password.change")
        return await _refused(request, db, info, "password", exc)
    record(
        db,
        actor=info.user.handle,
        action="password.changed",
        target=info.user.handle,
        ip=client_ip(request),
        detail={"sessions_ended": ended},
    )
    await db.commit()
    return _back("password", "password")


@router.post(
    "/account/app-passwords", response_class=HTMLResponse, summary="Create an app password"
)
async def create_app_password(
    request: Request,
    _csrf: CsrfDep,
    db: SessionDep,
    info: CurrentUserDep,
    name: Annotated[str, Form()] = "",
) -> Response:
    """Create an app password and show it, once."""
    try:
        app_password, secret = await service.create_app_password(db, user=info.user, name=name)
    except AppError as exc:
        return await _refused(request, db, info, "app-passwords", exc)
    record(
        db,
        actor=info.user.handle,
        action="app_password.created",
        target=info.user.handle,
        ip=client_ip(request),
        detail={"id": app_password.id, "name": app_password.name},
    )
    await db.commit()
    settings = request.app.state.settings
    response = render(
        request,
        "app_password_created.html",
        {
            "viewer": info,
            "active": "account",
            "name": app_password.name,
            "secret": secret,
            "address": f"{info.user.handle}@{settings.mail_domain}",
        },
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post(
    "/account/app-passwords/{app_password_id}/revoke",
    response_class=HTMLResponse,
    summary="Revoke an app password",
)
async def revoke_app_password(
    request: Request,
    app_password_id: int,
    _csrf: CsrfDep,
    db: SessionDep,
    info: CurrentUserDep,
) -> Response:
    """Revoke one of your app passwords."""
    try:
        revoked = await service.revoke_app_password(
            db, user=info.user, app_password_id=app_password_id
        )
    except AppError as exc:
        return await _refused(request, db, info, "app-passwords", exc)
    record(
        db,
        actor=info.user.handle,
        action="app_password.revoked",
        target=info.user.handle,
        ip=client_ip(request),
        detail={"id": revoked.id, "name": revoked.name},
    )
    await db.commit()
    return _back("app-password-revoked", "app-passwords")


@router.post(
    "/account/sessions/{sid}/revoke", response_class=HTMLResponse, summary="Sign out a session"
)
async def revoke_session(
    request: Request, sid: str, _csrf: CsrfDep, db: SessionDep, info: CurrentUserDep
) -> Response:
    """Sign out one of your other sessions (and the apps it signed in to)."""
    if sid == info.sid:
        return await _refused(
            request,
            db,
            info,
            "sessions",
            AppError("This is the session you are using: use Log out to end it."),
        )
    try:
        await service.revoke_session_by_sid(db, user=info.user, sid=sid)
    except AppError as exc:
        return await _refused(request, db, info, "sessions", exc)
    record(
        db,
        actor=info.user.handle,
        action="session.revoked",
        target=info.user.handle,
        ip=client_ip(request),
        detail={"sid": sid},
    )
    await db.commit()
    return _back("session-revoked", "sessions")


# --- two-factor authentication -------------------------------------------------------------


@router.post("/account/totp/enrol", response_class=HTMLResponse, summary="Start TOTP set-up")
async def start_totp(
    request: Request, _csrf: CsrfDep, db: SessionDep, info: CurrentUserDep
) -> Response:
    """Create a new TOTP secret and go to the page that shows it."""
    try:
        totp.begin_enrolment(info.user)
    except AppError as exc:
        return await _refused(request, db, info, "totp", exc)
    await db.commit()
    return RedirectResponse("/account/totp", status_code=status.HTTP_303_SEE_OTHER)


def _totp_context(request: Request, info: SessionInfo) -> dict[str, Any]:
    user = info.user
    assert user.totp_secret is not None
    uri = totp.provisioning_uri(
        user.totp_secret, handle=user.handle, mail_domain=request.app.state.settings.mail_domain
    )
    return {
        "viewer": info,
        "active": "account",
        "qr": totp.qr_svg(uri),
        "secret": totp.grouped(user.totp_secret),
        "uri": uri,
    }


@router.get("/account/totp", response_class=HTMLResponse, summary="TOTP set-up page")
async def totp_page(request: Request, info: CurrentUserDep) -> Response:
    """Show the QR code and the secret of a pending TOTP set-up."""
    if info.user.totp_enabled or info.user.totp_secret is None:
        return RedirectResponse("/account#totp", status_code=status.HTTP_303_SEE_OTHER)
    response = render(request, "totp_enrol.html", _totp_context(request, info))
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/account/totp/confirm", response_class=HTMLResponse, summary="Finish TOTP set-up")
async def confirm_totp(
    request: Request,
    _csrf: CsrfDep,
    db: SessionDep,
    info: CurrentUserDep,
    throttle: ThrottleDep,
    code: Annotated[str, Form()] = "",
) -> Response:
    """Check a code from the app, turn TOTP on and show the recovery codes, once."""
    user = info.user
    if user.totp_enabled or user.totp_secret is None:
        return RedirectResponse("/account#totp", status_code=status.HTTP_303_SEE_OTHER)
    try:
        decision = await throttle.second_factor(user.handle)
        decision.raise_if_refused("codes")
        codes = await totp.confirm_enrolment(db, user=user, code=code)
    except AppError as exc:
        response = render(
            request,
            "totp_enrol.html",
            {**_totp_context(request, info), "error": exc.detail},
            status_code=exc.status_code,
        )
        response.headers.update(exc.headers)
        return response
    record(db, actor=user.handle, action="totp.enabled", target=user.handle, ip=client_ip(request))
    await db.commit()
    return _recovery_codes_page(request, info, codes)


def _recovery_codes_page(request: Request, info: SessionInfo, codes: list[str]) -> Response:
    response = render(
        request, "recovery_codes.html", {"viewer": info, "active": "account", "codes": codes}
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/account/totp/disable", response_class=HTMLResponse, summary="Turn TOTP off")
async def disable_totp(
    request: Request,
    _csrf: CsrfDep,
    db: SessionDep,
    info: CurrentUserDep,
    throttle: ThrottleDep,
    password: Annotated[str, Form()] = "",
) -> Response:
    """Turn two-factor authentication off (the password is required)."""
    try:
        await _check_reauth(throttle, info)
        await service.require_password(info.user, password)
    except AppError as exc:
        if isinstance(exc, service.WrongPassword):
            await _record_wrong_password(request, db, info, "totp.disable")
        return await _refused(request, db, info, "totp", exc)
    await totp.disable(db, user=info.user)
    record(
        db,
        actor=info.user.handle,
        action="totp.disabled",
        target=info.user.handle,
        ip=client_ip(request),
    )
    await db.commit()
    return _back("totp-disabled", "totp")


@router.post(
    "/account/totp/recovery-codes",
    response_class=HTMLResponse,
    summary="Replace the recovery codes",
)
async def new_recovery_codes(
    request: Request,
    _csrf: CsrfDep,
    db: SessionDep,
    info: CurrentUserDep,
    throttle: ThrottleDep,
    password: Annotated[str, Form()] = "",
) -> Response:
    """Make ten new recovery codes (the old ones stop working); the password is required."""
    if not info.user.totp_enabled:
        return RedirectResponse("/account#totp", status_code=status.HTTP_303_SEE_OTHER)
    try:
        await _check_reauth(throttle, info)
        await service.require_password(info.user, password)
    except AppError as exc:
        if isinstance(exc, service.WrongPassword):
            await _record_wrong_password(request, db, info, "recovery_code.regenerate")
        return await _refused(request, db, info, "totp", exc)
    codes = await totp.replace_recovery_codes(db, user=info.user)
    record(
        db,
        actor=info.user.handle,
        action="recovery_code.regenerated",
        target=info.user.handle,
        ip=client_ip(request),
    )
    await db.commit()
    return _recovery_codes_page(request, info, codes)
