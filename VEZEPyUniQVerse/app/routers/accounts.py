"""Sign-up, log-in (password, then TOTP when enabled) and log-out pages.

Log-in errors are one sentence for an unknown handle, a wrong password and a disabled account
alike, and cost the same Argon2 work, so the page tells nobody which accounts exist. Log-out
ends the portal session, the refresh tokens issued under it, and (OpenID Connect Front-Channel
Logout 1.0) the sessions of every client that registered a front-channel logout URI.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyCore.errors import AppError
from VEZEPyCore.security.csrf import require_csrf
from VEZEPyCore.security.ratelimit import RateDecision
from VEZEPyCore.web.deps import SessionDep
from VEZEPyCore.web.templates import render
from VEZEPyUniQVerse.app.deps import SettingsDep
from VEZEPyUniQVerse.app.routers.page_route import PageRoute
from VEZEPyUniQVerse.db.models import OAuthClient, WebSession
from VEZEPyUniQVerse.services.accounts import service, totp
from VEZEPyUniQVerse.services.accounts.deps import (
    MaybeUserDep,
    ThrottleDep,
    safe_next,
)
from VEZEPyUniQVerse.services.accounts.handles import handle_key
from VEZEPyUniQVerse.services.accounts.sessions import (
    SessionInfo,
    clear_session_cookie,
    client_ip,
    create_session,
    current_session,
    revoke_session,
)
from VEZEPyUniQVerse.services.audit.service import record
from VEZEPyUniQVerse.services.metrics import portal_metrics
from VEZEPyUniQVerse.services.provisioning.queue import enqueue_account

router = APIRouter(tags=["accounts"], include_in_schema=False, route_class=PageRoute)

CsrfDep = Annotated[None, Depends(require_csrf)]
LOGIN_FAILED = "Wrong handle or password."
#: How long a password-checked session may wait for its second factor.
SECOND_FACTOR_DEADLINE = timedelta(minutes=10)
FRONTCHANNEL_TIMEOUT_MS = 3000


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)


def _too_many(decision: RateDecision, what: str) -> str:
    return f"Too many {what}. Try again in {decision.retry_after_seconds} seconds."


def _retry_after(seconds: int) -> dict[str, str]:
    return {"Retry-After": str(seconds)}


def _form(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    response = render(
        request,
        template,
        {"viewer": None, "status_code": status_code, **context},
        status_code=status_code,
    )
    response.headers.update(headers or {})
    return response


# --- sign-up -------------------------------------------------------------------------------


@router.get("/signup", response_class=HTMLResponse, summary="The sign-up form")
async def signup_page(request: Request, viewer: MaybeUserDep, next: str = "") -> Response:
    """Show the sign-up form (or go to the account when already signed in)."""
    if viewer is not None:
        return _see_other(safe_next(next))
    return _form(request, "signup.html", {"next": safe_next(next, default=""), "values": {}})


@router.post("/signup", response_class=HTMLResponse, summary="Create an account")
async def signup(
    request: Request,
    _csrf: CsrfDep,
    db: SessionDep,
    settings: SettingsDep,
    throttle: ThrottleDep,
    handle: Annotated[str, Form()] = "",
    display_name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    """Create the account, sign it in and queue its mailbox and player profile."""
    values = {"handle": handle, "display_name": display_name}
    context = {"next": safe_next(next, default=""), "values": values}
    ip = client_ip(request)
    decision = await throttle.signup_ip(ip)
    if not decision.allowed:
        return _form(
            request,
            "signup.html",
            {**context, "error": _too_many(decision, "sign-ups from your network")},
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            headers=_retry_after(decision.retry_after_seconds),
        )
    try:
        user = await service.create_user(
            db,
            handle=handle,
            display_name=display_name,
            password=password,
            confirm=confirm,
            admin_handles=settings.admin_handles,
        )
    except AppError as exc:
        return _form(
            request,
            "signup.html",
            {**context, "error": exc.detail},
            status_code=exc.status_code,
        )
    response = _see_other(safe_next(next))
    await _end_browser_session(db, request)
    await create_session(db, response, user=user, request=request, secure=settings.secure_cookies)
    record(
        db,
        actor=user.handle,
        action="account.signup",
        target=user.handle,
        ip=ip,
        detail={"roles": list(user.roles)},
    )
    await enqueue_account(db, handle=user.handle, display_name=user.display_name)
    await db.commit()
    return response


# --- log-in --------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse, summary="The log-in form")
async def login_page(
    request: Request, db: SessionDep, viewer: MaybeUserDep, next: str = ""
) -> Response:
    """Show the log-in form (or go on at once when already signed in)."""
    if viewer is not None:
        return _see_other(safe_next(next))
    if await _pending_second_factor(db, request) is not None:
        return _see_other(_with_next("/login/totp", next))  # the password was already checked
    return _form(request, "login.html", {"next": safe_next(next, default=""), "handle": ""})


@router.post("/login", response_class=HTMLResponse, summary="Check a handle and password")
async def login(
    request: Request,
    _csrf: CsrfDep,
    db: SessionDep,
    settings: SettingsDep,
    throttle: ThrottleDep,
    handle: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    """Log in; with two-factor authentication on, go on to the code step."""
    ip = client_ip(request)
    key = handle_key(handle)
    context = {"next": safe_next(next, default=""), "handle": handle[:64]}

    def refuse(message: str, status_code: int, headers: dict[str, str] | None = None) -> Response:
        return _form(
            request,
            "login.html",
            {**context, "error": message},
            status_code=status_code,
            headers=headers,
        )

    def refuse_locked(seconds: int) -> Response:
        return refuse(
            _locked_message(seconds), status.HTTP_429_TOO_MANY_REQUESTS, _retry_after(seconds)
        )

    decision = await throttle.login_ip(ip)
    if not decision.allowed:
        portal_metrics(request.app).login("password", "throttled")
        return refuse(
            _too_many(decision, "log-in attempts from your network"),
            status.HTTP_429_TOO_MANY_REQUESTS,
            _retry_after(decision.retry_after_seconds),
        )
    if not key or not password:
        return refuse("Type your handle and your password.", status.HTTP_400_BAD_REQUEST)
    locked = await throttle.locked_for(key)
    if locked:
        record(
            db,
            actor="anonymous",
            action="login.failure",
            target=key,
            outcome="denied",
            ip=ip,
            detail={"reason": "locked"},
        )
        await db.commit()
        portal_metrics(request.app).login("password", "locked")
        return refuse(
            _locked_message(locked), status.HTTP_429_TOO_MANY_REQUESTS, _retry_after(locked)
        )
    decision = await throttle.login_account(key)
    if not decision.allowed:
        portal_metrics(request.app).login("password", "throttled")
        return refuse(
            _too_many(decision, "log-in attempts for this handle"),
            status.HTTP_429_TOO_MANY_REQUESTS,
            _retry_after(decision.retry_after_seconds),
        )

    check = await service.check_login(db, handle=key, password=password)
    if check.user is None or check.failure is not None:
        record(
            db,
            actor=check.user.handle if check.user is not None else "anonymous",
            action="login.failure",
            target=key,
            outcome="denied",
            ip=ip,
            detail={"reason": check.failure or "unknown"},
        )
        portal_metrics(request.app).login("password", check.failure or "unknown_handle")
        lock = await throttle.record_failure(key)
        if lock:
            record(
                db,
                actor="anonymous",
                action="login.locked",
                target=key,
                outcome="denied",
                ip=ip,
                detail={"seconds": lock},
            )
        await db.commit()
        if lock:
            return refuse(
                _locked_message(lock), status.HTTP_429_TOO_MANY_REQUESTS, _retry_after(lock)
            )
        return refuse(LOGIN_FAILED, status.HTTP_400_BAD_REQUEST)

    user = check.user
    await throttle.record_success(key)
    await _end_browser_session(db, request)
    if user.totp_enabled:
        response = _see_other(_with_next("/login/totp", next))
        await create_session(
            db,
            response,
            user=user,
            request=request,
            secure=settings.secure_cookies,
            second_factor_done=False,
        )
        record(db, actor=user.handle, action="login.password_ok", target=user.handle, ip=ip)
        portal_metrics(request.app).login("password", "success")
    else:
        response = _see_other(safe_next(next))
        await create_session(
            db, response, user=user, request=request, secure=settings.secure_cookies
        )
        record(db, actor=user.handle, action="login.success", target=user.handle, ip=ip)
        portal_metrics(request.app).login("password", "success")
    await db.commit()
    return response


def _locked_message(seconds: int) -> str:
    return (
        "Too many failed log-ins for this handle. For your safety it is locked for "
        f"{seconds} seconds; try again after that."
    )


def _with_next(path: str, next_path: str) -> str:
    target = safe_next(next_path, default="")
    return f"{path}?{urlencode({'next': target})}" if target else path


async def _end_browser_session(db: AsyncSession, request: Request) -> None:
    """A new log-in replaces whatever session this browser had (complete or half-done)."""
    info = await current_session(db, request)
    if info is not None:
        await revoke_session(db, session_id=info.session_id)


# --- second factor -------------------------------------------------------------------------


async def _pending_second_factor(db: AsyncSession, request: Request) -> SessionInfo | None:
    info = await current_session(db, request)
    if info is None or info.second_factor_done:
        return info
    created = await db.scalar(select(WebSession.created_at).where(WebSession.id == info.session_id))
    if created is None or datetime.now(UTC) - created > SECOND_FACTOR_DEADLINE:
        await revoke_session(db, session_id=info.session_id)
        await db.commit()
        return None
    return info


@router.get("/login/totp", response_class=HTMLResponse, summary="The second-factor form")
async def login_totp_page(request: Request, db: SessionDep, next: str = "") -> Response:
    """Ask for the authenticator code (or a recovery code)."""
    info = await _pending_second_factor(db, request)
    if info is None:
        return _see_other(_with_next("/login", next))
    if info.second_factor_done:
        return _see_other(safe_next(next))
    return _form(request, "login_totp.html", {"next": safe_next(next, default="")})


@router.post("/login/totp", response_class=HTMLResponse, summary="Check the second factor")
async def login_totp(
    request: Request,
    _csrf: CsrfDep,
    db: SessionDep,
    throttle: ThrottleDep,
    code: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    """Complete the log-in with a TOTP code or a single-use recovery code."""
    ip = client_ip(request)
    context = {"next": safe_next(next, default="")}
    info = await _pending_second_factor(db, request)
    if info is None:
        return _form(
            request,
            "login.html",
            {**context, "handle": "", "error": "The log-in took too long. Please start again."},
            status_code=status.HTTP_400_BAD_REQUEST,
        )
    if info.second_factor_done:
        return _see_other(safe_next(next))
    user = info.user
    for decision, what in (
        (await throttle.login_ip(ip), "attempts from your network"),
        (await throttle.second_factor(user.handle), "codes for this account"),
    ):
        if not decision.allowed:
            portal_metrics(request.app).login("second_factor", "throttled")
            return _form(
                request,
                "login_totp.html",
                {**context, "error": _too_many(decision, what)},
                status_code=status.HTTP_429_TOO_MANY_REQUESTS,
                headers=_retry_after(decision.retry_after_seconds),
            )
    compact = "".join(code.split())
    method = "totp" if compact.isdigit() else "recovery_code"
    if method == "totp":
        accepted = totp.accept_code(user, compact)
    else:
        accepted = await totp.use_recovery_code(db, user=user, code=compact)
    if not accepted:
        record(
            db,
            actor=user.handle,
            action="login.failure",
            target=user.handle,
            outcome="denied",
            ip=ip,
            detail={"reason": f"bad_{method}"},
        )
        await db.commit()
        portal_metrics(request.app).login("second_factor", f"bad_{method}")
        return _form(
            request,
            "login_totp.html",
            {**context, "error": "That code is not right, or it was already used."},
            status_code=status.HTTP_400_BAD_REQUEST,
        )
    await db.execute(
        update(WebSession)
        .where(WebSession.id == info.session_id)
        .values(second_factor_done=True, last_seen_at=datetime.now(UTC))
    )
    if method == "recovery_code":
        remaining = await totp.unused_recovery_codes(db, user=user)
        record(
            db,
            actor=user.handle,
            action="recovery_code.used",
            target=user.handle,
            ip=ip,
            detail={"remaining": remaining},
        )
    record(
        db,
        actor=user.handle,
        action="login.success",
        target=user.handle,
        ip=ip,
        detail={"second_factor": method},
    )
    await db.commit()
    portal_metrics(request.app).login("second_factor", "success")
    return _see_other(safe_next(next))


# --- log-out -------------------------------------------------------------------------------


@router.get("/logout", response_class=HTMLResponse, summary="Confirm logging out")
async def logout_page(request: Request, db: SessionDep) -> Response:
    """A button to log out (log-out changes state, so it is a POST with a CSRF token)."""
    info = await current_session(db, request)
    return render(request, "logout_confirm.html", {"viewer": info, "signed_in": info is not None})


@router.post("/logout", response_class=HTMLResponse, summary="Log out everywhere")
async def logout(
    request: Request, _csrf: CsrfDep, db: SessionDep, settings: SettingsDep
) -> Response:
    """End the portal session and its tokens, then sign the browser out of every client."""
    info = await current_session(db, request)
    frames: list[str] = []
    if info is not None:
        await revoke_session(db, session_id=info.session_id)
        await service.revoke_refresh_tokens(db, sids=[info.sid])
        record(
            db,
            actor=info.user.handle,
            action="logout",
            target=info.user.handle,
            ip=client_ip(request),
            detail={"sid": info.sid},
        )
        await db.commit()
        frames = await frontchannel_logout_urls(db, issuer=settings.jwt_iss, sid=info.sid)
    response = render(
        request,
        "logout.html",
        {"viewer": None, "frames": frames, "timeout_ms": FRONTCHANNEL_TIMEOUT_MS},
    )
    clear_session_cookie(response, secure=settings.secure_cookies)
    response.headers["Cache-Control"] = "no-store"
    return response


async def frontchannel_logout_urls(db: AsyncSession, *, issuer: str, sid: str) -> list[str]:
    """Each enabled client's `frontchannel_logout_uri` with `iss` and `sid` (section 2 of
    OpenID Connect Front-Channel Logout 1.0)."""
    uris = await db.scalars(
        select(OAuthClient.frontchannel_logout_uri)
        .where(OAuthClient.enabled.is_(True), OAuthClient.frontchannel_logout_uri.is_not(None))
        .order_by(OAuthClient.client_id)
    )
    query = urlencode({"iss": issuer, "sid": sid})
    return [f"{uri}{'&' if '?' in uri else '?'}{query}" for uri in uris if uri]
