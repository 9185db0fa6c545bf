"""The OpenID Connect provider's endpoints: discovery, JWKS, authorize, token, revoke, userinfo.

Thin: parse the request, call `services/oidc/grants.py`, shape the answer. Token-endpoint
errors are RFC 6749 section 5.2 JSON with `Cache-Control: no-store`; authorization errors go
back to the client's redirect URI (section 4.1.2.1) once, and only once, that URI is known to
be registered for the client.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import FormData

from VEZEPyCore.auth import scopes as scope_names
from VEZEPyCore.auth.deps import bearer_token
from VEZEPyCore.errors import Unauthorized
from VEZEPyCore.security.ratelimit import RateLimiter
from VEZEPyUniQVerse.app.deps import SessionmakerDep
from VEZEPyUniQVerse.app.routers.page_route import error_page
from VEZEPyUniQVerse.services.accounts.deps import current_user, login_url
from VEZEPyUniQVerse.services.accounts.sessions import client_ip
from VEZEPyUniQVerse.services.audit.service import record
from VEZEPyUniQVerse.services.metrics import portal_metrics
from VEZEPyUniQVerse.services.oidc import grants
from VEZEPyUniQVerse.services.oidc import scopes as oidc_scopes
from VEZEPyUniQVerse.services.oidc.errors import OAuthError
from VEZEPyUniQVerse.services.oidc.grants import (
    AuthorizePageError,
    AuthorizeRedirectError,
    Provider,
    TokenContext,
)
from VEZEPyUniQVerse.services.oidc.schemas import (
    JWKSRead,
    OAuthErrorRead,
    ProviderMetadataRead,
    TokenRead,
    UserInfoRead,
)

router = APIRouter(tags=["openid connect"])

#: RFC 6749 section 5.1: token responses must not be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
#: Per client IP: all token and revocation requests, and refused ones per client.
REQUESTS_PER_MINUTE = 300
FAILURES_PER_WINDOW = 20
FAILURE_WINDOW_SECONDS = 300
SIGNING_ALGORITHMS = ["RS256"]
CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

_TOKEN_FORM: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["grant_type"],
                    "properties": {
                        name: {"type": "string"}
                        for name in (
                            "grant_type",
                            "code",
                            "redirect_uri",
                            "code_verifier",
                            "refresh_token",
                            "scope",
                            "client_id",
                            "client_secret",
                        )
                    },
                }
            }
        },
    }
}
_REVOKE_FORM: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["token"],
                    "properties": {
                        name: {"type": "string"}
                        for name in ("token", "token_type_hint", "client_id", "client_secret")
                    },
                }
            }
        },
    }
}
_OAUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": OAuthErrorRead, "description": "Refused (RFC 6749 section 5.2)"},
    401: {"model": OAuthErrorRead, "description": "Client authentication failed"},
    429: {"model": OAuthErrorRead, "description": "Too many requests; see Retry-After"},
}


def _provider(request: Request) -> Provider:
    provider: Provider = request.app.state.oidc
    return provider


@router.get(
    "/.well-known/openid-configuration",
    response_model=ProviderMetadataRead,
    summary="OpenID Provider metadata (OpenID Connect Discovery 1.0)",
)
async def read_provider_metadata(request: Request) -> ProviderMetadataRead:
    """Where the endpoints are and what the provider supports."""
    provider = _provider(request)
    return ProviderMetadataRead(
        issuer=provider.issuer,
        authorization_endpoint=provider.endpoint("/oauth/authorize"),
        token_endpoint=provider.endpoint("/oauth/token"),
        userinfo_endpoint=provider.endpoint("/userinfo"),
        jwks_uri=provider.endpoint("/.well-known/jwks.json"),
        revocation_endpoint=provider.endpoint("/oauth/revoke"),
        response_types_supported=["code"],
        response_modes_supported=["query"],
        grant_types_supported=["authorization_code", "refresh_token", "client_credentials"],
        subject_types_supported=["public"],
        id_token_signing_alg_values_supported=SIGNING_ALGORITHMS,
        token_endpoint_auth_methods_supported=CLIENT_AUTH_METHODS,
        revocation_endpoint_auth_methods_supported=CLIENT_AUTH_METHODS,
        code_challenge_methods_supported=["S256"],
        scopes_supported=sorted(
            frozenset().union(*oidc_scopes.ROLE_SCOPES.values()) | scope_names.ALL_SCOPES
        ),
        claims_supported=[
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "sid",
            "azp",
            "at_hash",
            "preferred_username",
            "name",
            "email",
            "email_verified",
        ],
        prompt_values_supported=sorted(grants.SUPPORTED_PROMPTS),
        authorization_response_iss_parameter_supported=True,
    )


@router.get(
    "/.well-known/jwks.json",
    response_model=JWKSRead,
    summary="The public signing keys (RFC 7517): the active key and recently retired ones",
)
async def read_jwks(request: Request) -> JSONResponse:
    """Verifiers fetch this to check token signatures; it never holds private parts."""
    jwks = await _provider(request).keys.jwks()
    return JSONResponse(jwks, headers={"Cache-Control": "public, max-age=60"})


@router.get(
    "/oauth/authorize",
    summary="Authorization endpoint: code flow with PKCE S256 (RFC 6749 4.1, RFC 7636)",
    response_class=RedirectResponse,
    status_code=status.HTTP_302_FOUND,
    responses={
        302: {"description": "To the client with a code or an error, or to the log-in page"},
        400: {"description": "Unknown client or unregistered redirect_uri (an HTML page)"},
    },
)
async def authorize(request: Request, sessionmaker: SessionmakerDep) -> Response:
    """Send a signed-in person back to the client with a one-time code."""
    provider = _provider(request)
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, []).append(value)
    async with sessionmaker() as db:
        try:
            auth_request = await grants.validate_authorization_request(db, params)
        except AuthorizePageError as exc:
            return error_page(request, status.HTTP_400_BAD_REQUEST, exc.description)
        except AuthorizeRedirectError as exc:
            return _redirect_error(exc, provider)
        viewer = await current_user(db, request)
        if viewer is None:
            if "none" in auth_request.prompt:  # Core 3.1.2.6: the client asked for no UI
                return _redirect_error(
                    AuthorizeRedirectError(
                        "login_required",
                        "the person is not logged in at the portal",
                        redirect_uri=auth_request.redirect_uri,
                        state=auth_request.state,
                    ),
                    provider,
                )
            here = request.url.path + "?" + request.url.query
            return RedirectResponse(login_url(here), status_code=status.HTTP_303_SEE_OTHER)
        try:
            code = await grants.create_authorization_code(
                db, auth_request, user=viewer.user, sid=viewer.sid
            )
        except AuthorizeRedirectError as exc:
            return _redirect_error(exc, provider)
        await db.commit()
    # First-party clients from the configuration need no consent screen.
    location = grants.redirect_with(
        auth_request.redirect_uri,
        {"code": code, "state": auth_request.state, "iss": provider.issuer},
    )
    return RedirectResponse(location, status_code=status.HTTP_302_FOUND, headers=NO_STORE)


def _redirect_error(exc: AuthorizeRedirectError, provider: Provider) -> RedirectResponse:
    location = grants.redirect_with(
        exc.redirect_uri,
        {
            "error": exc.error,
            "error_description": exc.description,
            "state": exc.state,
            "iss": provider.issuer,  # RFC 9207
        },
    )
    return RedirectResponse(location, status_code=status.HTTP_302_FOUND, headers=NO_STORE)


@router.post(
    "/oauth/token",
    response_model=TokenRead,
    response_model_exclude_none=True,
    summary="Token endpoint: authorization_code, refresh_token, client_credentials",
    responses=_OAUTH_ERRORS,
    openapi_extra=_TOKEN_FORM,
)
async def issue_token(request: Request, sessionmaker: SessionmakerDep) -> JSONResponse:
    """Exchange a code, rotate a refresh token, or give a service its token."""
    provider = _provider(request)
    ip = client_ip(request)
    limiter: RateLimiter = request.app.state.oauth_rate_limiter
    try:
        form = await _read_form(request)
        credentials = grants.read_client_credentials(request.headers.get("authorization"), form)
        await _check_budget(limiter, provider, ip=ip, client_id=credentials.client_id)
    except OAuthError as exc:
        return _oauth_error(exc)
    grant_type = (form.get("grant_type") or [""])[0]
    async with sessionmaker() as db:
        try:
            client = await grants.authenticate_client(db, provider, credentials)
            tokens, user = await grants.grant_token(
                db, provider, client=client, form=form, context=TokenContext(ip=ip)
            )
        except OAuthError as exc:
            if not exc.keep_changes:
                await db.rollback()
            record(
                db,
                actor=f"client:{credentials.client_id or 'unknown'}"[:120],
                action="token.refused",
                outcome="denied",
                ip=ip,
                detail={"grant_type": grant_type[:40], "error": exc.error},
            )
            await db.commit()
            portal_metrics(request.app).token_refused(grant_type, exc.error)
            await _count_failure(limiter, provider, exc, ip=ip, client_id=credentials.client_id)
            return _oauth_error(exc)
        record(
            db,
            actor=user.handle if user is not None else f"client:{client.client_id}",
            action="token.issued",
            target=f"client:{client.client_id}",
            ip=ip,
            detail={"grant_type": grant_type, "scope": tokens.scope},
        )
        await db.commit()
    portal_metrics(request.app).token_issued(grant_type)
    return JSONResponse(tokens.model_dump(exclude_none=True), headers=NO_STORE)


@router.post(
    "/oauth/revoke",
    summary="Revoke a refresh token and its family (RFC 7009)",
    responses=_OAUTH_ERRORS,
    openapi_extra=_REVOKE_FORM,
)
async def revoke_token(request: Request, sessionmaker: SessionmakerDep) -> Response:
    """200 whether or not the token was known (section 2.2)."""
    provider = _provider(request)
    ip = client_ip(request)
    limiter: RateLimiter = request.app.state.oauth_rate_limiter
    async with sessionmaker() as db:
        try:
            form = await _read_form(request)
            credentials = grants.read_client_credentials(request.headers.get("authorization"), form)
            await _check_budget(limiter, provider, ip=ip, client_id=credentials.client_id)
        except OAuthError as exc:
            return _oauth_error(exc)
        try:
            client = await grants.authenticate_client(db, provider, credentials)
            revoked = await grants.revoke_token(db, client=client, form=form)
        except OAuthError as exc:
            await _count_failure(limiter, provider, exc, ip=ip, client_id=credentials.client_id)
            return _oauth_error(exc)
        if revoked is not None:
            record(
                db,
                actor=f"client:{client.client_id}",
                action="token.revoked",
                target=str(revoked.user_id),
                ip=ip,
                detail={"family": revoked.family_id},
            )
        await db.commit()
    return Response(status_code=status.HTTP_200_OK, headers=NO_STORE)


_USERINFO: dict[str, Any] = {
    "response_model": UserInfoRead,
    "response_model_exclude_none": True,
    "responses": {401: {"model": OAuthErrorRead, "description": "Missing or invalid token"}},
}


@router.get("/userinfo", summary="Claims about the token's person (OIDC Core 5.3)", **_USERINFO)
async def read_userinfo(request: Request, sessionmaker: SessionmakerDep) -> JSONResponse:
    """Who the bearer access token speaks for: sub, and profile and email claims by scope."""
    return await _userinfo(request, sessionmaker)


@router.post("/userinfo", summary="Userinfo by POST (OIDC Core 5.3.1)", **_USERINFO)
async def read_userinfo_by_post(request: Request, sessionmaker: SessionmakerDep) -> JSONResponse:
    """The same as GET, for clients that POST."""
    return await _userinfo(request, sessionmaker)


async def _userinfo(
    request: Request, sessionmaker: async_sessionmaker[AsyncSession]
) -> JSONResponse:
    try:
        token = bearer_token(request)
    except Unauthorized as exc:
        return _oauth_error(
            OAuthError("invalid_request", exc.detail, status_code=401, headers=exc.headers)
        )
    if token is None:
        return _oauth_error(
            OAuthError(
                "invalid_request",
                "missing bearer token",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="veze-portal"'},
            )
        )
    async with sessionmaker() as db:
        try:
            claims = await grants.userinfo(db, _provider(request), token)
        except OAuthError as exc:
            return _oauth_error(exc)
    return JSONResponse(claims, headers=NO_STORE)


async def _read_form(request: Request) -> dict[str, list[str]]:
    # Section 3.2: parameters come form-encoded in the body, never in the query.
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "send application/x-www-form-urlencoded")
    form: FormData = await request.form()
    params: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            params.setdefault(key, []).append(value)
    return params


def _failure_key(provider: Provider, ip: str, client_id: str | None) -> str:
    return f"oauth:{provider.issuer}:failures:{ip}:{(client_id or '-')[:100]}"


async def _check_budget(
    limiter: RateLimiter, provider: Provider, *, ip: str, client_id: str | None
) -> None:
    decision = await limiter.hit(
        f"oauth:{provider.issuer}:requests:{ip}", limit=REQUESTS_PER_MINUTE, window_seconds=60
    )
    if not decision.allowed:
        raise _too_many(decision.retry_after_seconds)
    # Refusals (bad secrets, unknown codes and refresh tokens) have their own, smaller budget:
    # guessing is what they would be spent on.
    if await limiter.peek(_failure_key(provider, ip, client_id)) >= FAILURES_PER_WINDOW:
        raise _too_many(FAILURE_WINDOW_SECONDS)


async def _count_failure(
    limiter: RateLimiter, provider: Provider, exc: OAuthError, *, ip: str, client_id: str | None
) -> None:
    if exc.error in ("invalid_client", "invalid_grant"):
        await limiter.hit(
            _failure_key(provider, ip, client_id),
            limit=FAILURES_PER_WINDOW,
            window_seconds=FAILURE_WINDOW_SECONDS,
        )


def _too_many(retry_after: int) -> OAuthError:
    return OAuthError(
        "too_many_requests",
        f"too many requests; try again in {retry_after} s",
        status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        headers={"Retry-After": str(retry_after)},
    )


def _oauth_error(exc: OAuthError) -> JSONResponse:
    return JSONResponse(
        exc.body(), status_code=exc.status_code, headers={**NO_STORE, **exc.headers}
    )
