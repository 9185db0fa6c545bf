"""`POST /internal/auth/verify`: the password check behind SMTP AUTH PLAIN/LOGIN."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from VEZEPyCore.auth.deps import scope_dependency, verifier_on_state
from VEZEPyCore.auth.principal import Principal
from VEZEPyCore.errors import AppError, Forbidden, Unauthorized
from VEZEPyCore.security.ratelimit import RateLimiter
from VEZEPyCore.web.deps import SessionDep
from VEZEPyUniQVerse.app.deps import SettingsDep
from VEZEPyUniQVerse.services.accounts.sessions import client_ip
from VEZEPyUniQVerse.services.internal_auth import service
from VEZEPyUniQVerse.services.internal_auth.schemas import PasswordCheckCreate, PasswordCheckRead

router = APIRouter(tags=["internal"])


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"


class TooManyAttempts(AppError):
    status_code, code = 429, "rate_limited"


async def _email_service(
    principal: Annotated[
        Principal,
        Depends(scope_dependency(verifier_on_state, service.VERIFY_PASSWORD_SCOPE)),
    ],
) -> Principal:
    # Client credentials tokens carry client_id (and subject "svc:<client>").
    if principal.claims.get("client_id") != service.EMAIL_SERVICE_CLIENT:
        raise Forbidden("only the mail service may check passwords")
    return principal


EmailServiceDep = Annotated[Principal, Depends(_email_service)]


@router.post(
    "/internal/auth/verify",
    response_model=PasswordCheckRead,
    summary="Check an account or app password for SMTP AUTH (mail service only)",
    responses={
        401: {"description": "Wrong handle or password (`invalid_credentials`), or bad token"},
        403: {"description": "The token is not the mail service's"},
        429: {"description": "Too many attempts from this client or at this handle"},
    },
)
async def verify_password(
    body: PasswordCheckCreate,
    _caller: EmailServiceDep,
    db: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> PasswordCheckRead:
    """Check an account or app password for SMTP AUTH (mail service only)."""
    limiter: RateLimiter = request.app.state.rate_limiter
    ip = body.remote_ip or client_ip(request)
    handle = service.normalise_handle(body.handle, mail_domain=settings.mail_domain)
    decision = await service.check_budget(limiter, ip=ip, handle=handle or "-")
    if not decision.allowed:
        raise TooManyAttempts(
            f"too many password checks; try again in {decision.retry_after_seconds} s",
            headers={"Retry-After": str(decision.retry_after_seconds)},
        )
    verified = None
    if handle is not None:
        verified = await service.verify_password_for_service(
            db, handle=handle, password=body.password, mail_domain=settings.mail_domain
        )
    if verified is None:
        await service.record_failure(limiter, handle=handle or "-")
        raise InvalidCredentials("wrong handle or password")
    return PasswordCheckRead(handle=verified.handle, email=verified.email)
