"""One service's single sign-on through the portal: sign-in, session, refresh, sign-out.

The session lives in the browser (a signed cookie), so any worker or replica can serve any
request. A refresh rotates the refresh token (the portal treats a reused one as theft and
revokes the whole family), so concurrent requests of one browser must not refresh with the
same token twice: refreshes are single-flight per refresh token in this process, and the
result is kept for a minute for the requests that arrive with the old cookie. With Redis the
single flight spans every worker and replica (`refresh.SharedRefresh`, ADR 0019).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.requests import HTTPConnection

from VEZEPyCore.auth.principal import Principal
from VEZEPyCore.auth.tokens import TokenVerifier
from VEZEPyCore.errors import Unauthorized, UpstreamTimeout, UpstreamUnavailable
from VEZEPyCore.services.registry import ServiceRegistry
from VEZEPyCore.settings import CoreSettings, read_or_create_secret
from VEZEPyCore.web.sso.config import SsoConfig
from VEZEPyCore.web.sso.cookies import (
    MAX_COOKIE_BYTES,
    CookieCodec,
    LoginTransaction,
    SsoSession,
    checked_cookie_name,
    delete_cookie_header,
    login_cookie_name,
    session_cookie_name,
    set_cookie_header,
)
from VEZEPyCore.web.sso.middleware import queue_cookie
from VEZEPyCore.web.sso.provider import (
    ProviderClient,
    SignInError,
    TokenEndpointError,
    TokenSet,
    pkce_s256,
)
from VEZEPyCore.web.sso.refresh import RefreshUnavailable, SharedRefresh

logger = logging.getLogger("veze.sso")

#: Errors a `prompt=none` request answers with when the person must interact (OIDC Core 3.1.2.6).
SILENT_FAILURES = frozenset(
    {"login_required", "interaction_required", "consent_required", "account_selection_required"}
)
LOGIN_COOKIE_PATH = "/auth"
#: How long a refresh result is handed to requests still carrying the old cookie.
REFRESH_RESULT_SECONDS = 60.0


class RelyingParty:
    """Single sign-on of one service (`app.state.sso`)."""

    def __init__(self, *, service: str, config: SsoConfig, templates: Jinja2Templates) -> None:
        self.service = service
        self.config = config
        self.templates = templates
        self.session_cookie = session_cookie_name(service)
        self.login_cookie = login_cookie_name(service)
        self.checked_cookie = checked_cookie_name(service)
        self._codec: CookieCodec | None = None
        self._provider: ProviderClient | None = None
        self._refreshed: dict[str, tuple[float, SsoSession | None]] = {}
        self._refresh_locks: dict[str, asyncio.Lock] = {}
        #: Cross-worker single flight, set for the app's lifespan when Redis is configured.
        self.shared_refresh: SharedRefresh | None = None

    # ---- wiring -------------------------------------------------------------------------

    def codec(self, settings: CoreSettings) -> CookieCodec:
        if self._codec is None:
            secret = read_or_create_secret(
                settings.resolved_secrets_dir / f"sso-cookie-{self.service}.key"
            )
            self._codec = CookieCodec(secret, service=self.service)
        return self._codec

    def provider(self, app: FastAPI) -> ProviderClient:
        """The portal client, bound to the HTTP client of the app's current lifespan."""
        http_client = app.state.http_client
        if self._provider is None or self._provider.http_client is not http_client:
            settings: CoreSettings = app.state.settings
            registry: ServiceRegistry = app.state.registry
            self._provider = ProviderClient(
                issuer=settings.jwt_iss,
                internal_url=registry.url(self.config.provider_service),
                public_url=registry.public_url(self.config.provider_service),
                client_id=self.config.client_id,
                client_secret=settings.client_secret(self.config.client_id),
                http_client=http_client,
                deadline_seconds=settings.http_timeout_seconds,
                leeway_seconds=settings.jwt_leeway_seconds,
            )
        return self._provider

    def redirect_uri(self, app: FastAPI) -> str:
        # From the registry, never from the Host header: it must be the registered one.
        registry: ServiceRegistry = app.state.registry
        return registry.public_url(self.service) + "/auth/callback"

    def portal_url(self, app: FastAPI) -> str:
        registry: ServiceRegistry = app.state.registry
        return registry.public_url(self.config.provider_service)

    # ---- sign-in ------------------------------------------------------------------------

    async def start_login(
        self, request: Request, *, next_path: str, prompt: str | None
    ) -> Response:
        """Send the browser to the portal's authorization endpoint (code flow, PKCE S256)."""
        settings: CoreSettings = request.app.state.settings
        try:
            metadata = await self.provider(request.app).metadata()
        except (UpstreamUnavailable, UpstreamTimeout) as exc:
            if prompt == "none":  # only a silent check: show the page signed out
                self._mark_checked(request)
                return RedirectResponse(next_path, status_code=303)
            return self.render_problem(request, exc.detail, next_path, status_code=502)
        login = LoginTransaction(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(64),  # 86 characters: RFC 7636 wants 43..128
            next_path=next_path,
            prompt=prompt,
            created_at=int(time.time()),
        )
        codec = self.codec(settings)
        pending = codec.load_logins(
            request.cookies.get(self.login_cookie), max_age=self.config.login_max_age_seconds
        )
        queue_cookie(
            request,
            set_cookie_header(
                self.login_cookie,
                codec.dump_logins([*pending, login]),
                max_age=self.config.login_max_age_seconds,
                secure=settings.secure_cookies,
                path=LOGIN_COOKIE_PATH,
            ),
        )
        params = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": self.redirect_uri(request.app),
            "scope": self.config.scope,
            "state": login.state,
            "nonce": login.nonce,
            "code_challenge": pkce_s256(login.code_verifier),
            "code_challenge_method": "S256",
        }
        if prompt:
            params["prompt"] = prompt
        separator = "&" if "?" in metadata.authorization_endpoint else "?"
        return RedirectResponse(
            metadata.authorization_endpoint + separator + urlencode(params),
            status_code=303,
            headers={"Cache-Control": "no-store"},
        )

    async def complete_login(
        self,
        request: Request,
        *,
        code: str | None,
        state: str | None,
        error: str | None,
        error_description: str | None,
        issuer: str | None,
    ) -> Response:
        """The portal's redirect back: check state, exchange the code, verify, start a session."""
        settings: CoreSettings = request.app.state.settings
        codec = self.codec(settings)
        pending = codec.load_logins(
            request.cookies.get(self.login_cookie), max_age=self.config.login_max_age_seconds
        )
        login = next((item for item in pending if state and _same(item.state, state)), None)
        if login is None:
            return self.render_problem(
                request,
                "This sign-in has expired or was started in another browser. Please try again.",
                self.config.home_path,
            )
        # The state is single-use, whatever happens next.
        remaining = [item for item in pending if item is not login]
        if remaining:
            queue_cookie(
                request,
                set_cookie_header(
                    self.login_cookie,
                    codec.dump_logins(remaining),
                    max_age=self.config.login_max_age_seconds,
                    secure=settings.secure_cookies,
                    path=LOGIN_COOKIE_PATH,
                ),
            )
        else:
            queue_cookie(
                request,
                delete_cookie_header(
                    self.login_cookie, secure=settings.secure_cookies, path=LOGIN_COOKIE_PATH
                ),
            )
        # RFC 9207: when the provider names itself, it must be the provider we asked.
        if issuer is not None and issuer.rstrip("/") != settings.jwt_iss.rstrip("/"):
            return self.render_problem(
                request, "The sign-in answer came from another issuer.", login.next_path
            )
        if error:
            if login.prompt == "none" and error in SILENT_FAILURES:
                self._mark_checked(request)
                return RedirectResponse(login.next_path, status_code=303)
            reason = error_description or error
            return self.render_problem(
                request, f"The portal did not sign you in: {reason}.", login.next_path
            )
        if not code:
            return self.render_problem(
                request, "The portal sent no authorization code.", login.next_path
            )
        try:
            session = await self._session_from_code(request, code=code, login=login)
            self.store_session(request, session)
        except SignInError as exc:
            logger.warning("sign-in at %s failed: %s", self.service, exc.detail)
            return self.render_problem(request, exc.detail, login.next_path)
        except (UpstreamUnavailable, UpstreamTimeout) as exc:
            return self.render_problem(request, exc.detail, login.next_path, status_code=502)
        queue_cookie(
            request, delete_cookie_header(self.checked_cookie, secure=settings.secure_cookies)
        )
        logger.info("signed in at %s: sub=%s", self.service, session.subject)
        return RedirectResponse(login.next_path, status_code=303)

    async def _session_from_code(
        self, request: Request, *, code: str, login: LoginTransaction
    ) -> SsoSession:
        provider = self.provider(request.app)
        try:
            tokens = await provider.exchange_code(
                code=code,
                redirect_uri=self.redirect_uri(request.app),
                code_verifier=login.code_verifier,
            )
        except TokenEndpointError as exc:
            raise SignInError(f"the portal refused the sign-in code ({exc.error})") from exc
        if tokens.id_token is None:
            raise SignInError("the portal sent no ID token")
        id_claims = await provider.verify_id_token(
            tokens.id_token, nonce=login.nonce, access_token=tokens.access_token
        )
        verifier: TokenVerifier = request.app.state.verifier
        try:
            principal = await verifier.verify(tokens.access_token)
        except Unauthorized as exc:
            # Not a loop back to the portal: this is a configuration problem to show.
            raise SignInError(
                f"this service cannot accept the portal's access token ({exc.detail}); "
                "check VEZE_JWKS_URL and VEZE_JWT_ISS"
            ) from exc
        if principal.subject != id_claims["sub"]:
            raise SignInError("the ID token and the access token name different people")
        sid = id_claims.get("sid")
        return _session(
            tokens,
            principal,
            refresh_token=tokens.refresh_token,
            sid=sid if isinstance(sid, str) else None,
            id_claims=id_claims,
        )

    # ---- the session --------------------------------------------------------------------

    def has_session(self, connection: HTTPConnection) -> bool:
        return bool(connection.cookies.get(self.session_cookie))

    async def session(self, connection: HTTPConnection) -> SsoSession | None:
        """The browser's session, refreshed when its access token is about to expire."""
        raw = connection.cookies.get(self.session_cookie)
        if not raw:
            return None
        settings: CoreSettings = connection.app.state.settings
        session = self.codec(settings).load_session(
            raw, max_age=self.config.session_max_age_seconds
        )
        if session is None:
            self.end_session(connection)
            return None
        if session.seconds_left() > self.config.refresh_margin_seconds:
            return session
        return await self._refresh_once(connection, session)

    async def principal(self, connection: HTTPConnection) -> Principal | None:
        """The signed-in person, verified like any API caller (audience, issuer, expiry)."""
        session = await self.session(connection)
        if session is None:
            return None
        verifier: TokenVerifier = connection.app.state.verifier
        try:
            return await verifier.verify(session.access_token)
        except Unauthorized as exc:
            logger.info("session at %s refused: %s", self.service, exc.detail)
            self.end_session(connection)
            return None

    async def session_access_token(self, connection: HTTPConnection) -> str | None:
        """For `VEZEPyCore.auth.deps.authenticate`: the cookie session's access token."""
        session = await self.session(connection)
        if session is None:
            raise Unauthorized(
                "the sign-in session has ended; sign in again",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return session.access_token

    def store_session(self, connection: HTTPConnection, session: SsoSession) -> None:
        settings: CoreSettings = connection.app.state.settings
        header = set_cookie_header(
            self.session_cookie,
            self.codec(settings).dump_session(session),
            max_age=self.config.session_max_age_seconds,
            secure=settings.secure_cookies,
        )
        if len(header) > MAX_COOKIE_BYTES:
            raise SignInError("the portal's tokens are too large for a session cookie")
        queue_cookie(connection, header)

    def end_session(self, connection: HTTPConnection) -> None:
        settings: CoreSettings = connection.app.state.settings
        queue_cookie(
            connection, delete_cookie_header(self.session_cookie, secure=settings.secure_cookies)
        )

    async def _refresh_once(
        self, connection: HTTPConnection, session: SsoSession
    ) -> SsoSession | None:
        if session.refresh_token is None:
            if session.seconds_left() > 0:
                return session
            self.end_session(connection)
            return None
        key = hashlib.sha256(session.refresh_token.encode()).hexdigest()
        found, result = self._recent_refresh(key)
        if not found:
            lock = self._refresh_locks.setdefault(key, asyncio.Lock())
            try:
                async with lock:
                    found, result = self._recent_refresh(key)
                    if not found:
                        try:
                            result = await self._refresh_everywhere_once(connection, session)
                        except (UpstreamUnavailable, UpstreamTimeout):
                            if session.seconds_left() > 0:
                                return session  # the portal is down; the token still works
                            raise
                        self._remember_refresh(key, result)
            finally:
                self._refresh_locks.pop(key, None)
        if result is None:
            self.end_session(connection)
            return None
        self.store_session(connection, result)
        return result

    async def _refresh_everywhere_once(
        self, connection: HTTPConnection, session: SsoSession
    ) -> SsoSession | None:
        """Refresh through the shared single flight when there is one (several workers)."""
        shared = self.shared_refresh
        if shared is None or session.refresh_token is None:
            return await self._refresh(connection, session)
        try:
            return await shared.run(
                session.refresh_token,
                lambda: self._refresh(connection, session),
                max_age=self.config.session_max_age_seconds,
            )
        except RefreshUnavailable as exc:
            if session.seconds_left() > 0:
                # Refreshing alone could race another worker into the portal's reuse
                # detection; the access token still works (the caller keeps it), so a
                # later request tries again.
                logger.warning("shared refresh at %s unavailable (%s): later", self.service, exc)
                raise UpstreamUnavailable("the shared refresh is unavailable") from exc
            logger.warning("shared refresh at %s unavailable (%s): alone", self.service, exc)
            return await self._refresh(connection, session)

    async def _refresh(self, connection: HTTPConnection, session: SsoSession) -> SsoSession | None:
        assert session.refresh_token is not None
        try:
            tokens = await self.provider(connection.app).refresh(session.refresh_token)
        except TokenEndpointError as exc:
            logger.info("refresh at %s refused (%s): session ends", self.service, exc.error)
            return None
        verifier: TokenVerifier = connection.app.state.verifier
        try:
            principal = await verifier.verify(tokens.access_token)
        except Unauthorized as exc:
            logger.warning("refreshed token refused at %s: %s", self.service, exc.detail)
            return None
        if principal.subject != session.subject:
            return None
        return _session(
            tokens,
            principal,
            refresh_token=tokens.refresh_token or session.refresh_token,
            sid=session.sid,
            previous=session,
        )

    def _recent_refresh(self, key: str) -> tuple[bool, SsoSession | None]:
        now = time.monotonic()
        for stale in [
            k for k, (at, _) in self._refreshed.items() if now - at > REFRESH_RESULT_SECONDS
        ]:
            del self._refreshed[stale]
        entry = self._refreshed.get(key)
        return (True, entry[1]) if entry is not None else (False, None)

    def _remember_refresh(self, key: str, result: SsoSession | None) -> None:
        self._refreshed[key] = (time.monotonic(), result)

    # ---- sign-out -----------------------------------------------------------------------

    async def logout_url(self, app: FastAPI) -> str:
        """The portal's logout page, which signs the person out of every service."""
        try:
            return (await self.provider(app).metadata()).end_session_endpoint
        except (UpstreamUnavailable, UpstreamTimeout):
            return self.portal_url(app) + "/logout"

    def sign_out_here(self, request: Request) -> None:
        settings: CoreSettings = request.app.state.settings
        self.end_session(request)
        queue_cookie(
            request,
            delete_cookie_header(
                self.login_cookie, secure=settings.secure_cookies, path=LOGIN_COOKIE_PATH
            ),
        )
        self._mark_checked(request)

    def frontchannel_logout(self, request: Request, *, issuer: str | None, sid: str | None) -> bool:
        """OpenID Connect Front-Channel Logout 1.0: end the session if `iss` and `sid` match."""
        settings: CoreSettings = request.app.state.settings
        raw = request.cookies.get(self.session_cookie)
        if not raw or not issuer or not sid:
            return False
        if issuer.rstrip("/") != settings.jwt_iss.rstrip("/"):
            return False
        session = self.codec(settings).load_session(
            raw, max_age=self.config.session_max_age_seconds
        )
        if session is None or session.sid is None or not _same(session.sid, sid):
            return False
        self.end_session(request)
        logger.info("front-channel logout at %s: sub=%s", self.service, session.subject)
        return True

    def _mark_checked(self, connection: HTTPConnection) -> None:
        settings: CoreSettings = connection.app.state.settings
        queue_cookie(
            connection,
            set_cookie_header(
                self.checked_cookie,
                "1",
                max_age=self.config.silent_retry_seconds,
                secure=settings.secure_cookies,
            ),
        )

    # ---- pages --------------------------------------------------------------------------

    def render_problem(
        self, request: Request, reason: str, next_path: str, *, status_code: int = 400
    ) -> HTMLResponse:
        retry = "/auth/login?" + urlencode({"next": next_path})
        return self.templates.TemplateResponse(
            request,
            "sso_problem.html",
            {"reason": reason, "retry_url": retry, "portal_url": self.portal_url(request.app)},
            status_code=status_code,
            headers={"Cache-Control": "no-store"},
        )


def _same(expected: str, given: str) -> bool:
    """Constant-time comparison that also takes non-ASCII input (a refusal, not a crash)."""
    return hmac.compare_digest(expected.encode(), given.encode())


def _session(
    tokens: TokenSet,
    principal: Principal,
    *,
    refresh_token: str | None,
    sid: str | None,
    id_claims: dict[str, Any] | None = None,
    previous: SsoSession | None = None,
) -> SsoSession:
    claims = {**(id_claims or {}), **principal.claims}
    expires_at = int(time.time()) + tokens.expires_in if tokens.expires_in > 0 else 0
    exp = principal.claims.get("exp")
    if isinstance(exp, int | float):
        expires_at = min(expires_at, int(exp)) if expires_at else int(exp)
    handle = claims.get("preferred_username")
    return SsoSession(
        access_token=tokens.access_token,
        refresh_token=refresh_token,
        expires_at=expires_at,
        sid=sid,
        subject=principal.subject,
        handle=handle if isinstance(handle, str) else previous.handle if previous else None,
        email=principal.address or (previous.email if previous else None),
    )
