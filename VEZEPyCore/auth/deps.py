"""FastAPI dependencies: bearer extraction and scope checks.

401 for a missing or invalid token, 403 for a missing scope, both with a JSON reason and the
`WWW-Authenticate` challenge of RFC 6750.

A service with single sign-on (`VEZEPyCore.web.sso`) also accepts its session cookie from
requests that carry no bearer, so its own pages' scripts can call its API. A browser sends
that cookie by itself, so such requests must prove they come from the service's own pages:
unsafe methods pass the CSRF check (`X-CSRF-Token`), WebSockets an `Origin` check. A bearer
always wins over the cookie and needs neither: browsers never add one on their own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol
from urllib.parse import urlsplit

from fastapi import Request
from starlette.requests import HTTPConnection

from VEZEPyCore.auth.principal import Principal
from VEZEPyCore.auth.tokens import TokenVerifier
from VEZEPyCore.errors import Forbidden, InsufficientScope, Unauthorized
from VEZEPyCore.security.csrf import SAFE_METHODS, require_csrf


class SessionAuthenticator(Protocol):
    """Turns a browser session cookie into an access token (`app.state.session_authenticator`)."""

    def has_session(self, connection: HTTPConnection) -> bool: ...

    async def session_access_token(self, connection: HTTPConnection) -> str | None: ...


def bearer_token(connection: HTTPConnection) -> str | None:
    """The bearer from `Authorization: Bearer` or, for EventSource/WebSocket, `access_token`."""
    header = connection.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized(
                "Authorization header must be 'Bearer <token>'",
                headers={"WWW-Authenticate": 'Bearer error="invalid_request"'},
            )
        return value.strip()
    token = connection.query_params.get("access_token")
    return token or None


async def session_token(connection: HTTPConnection) -> str | None:
    """The access token of the service's sign-on session cookie, once the request has shown
    it comes from the service's own pages; None when the service or request has no session.
    """
    authenticator: SessionAuthenticator | None = getattr(
        connection.app.state, "session_authenticator", None
    )
    if authenticator is None or not authenticator.has_session(connection):
        return None
    await _require_same_site(connection)
    return await authenticator.session_access_token(connection)


async def _require_same_site(connection: HTTPConnection) -> None:
    if connection.scope["type"] == "websocket":
        # Browsers send cookies on cross-site WebSocket handshakes and no CSRF header.
        origin = connection.headers.get("origin")
        if not origin or urlsplit(origin).netloc != connection.headers.get("host"):
            raise Forbidden("cross-origin WebSocket refused")
        return
    if isinstance(connection, Request):
        await require_csrf(connection)
    elif connection.scope.get("method", "GET") not in SAFE_METHODS:
        raise Forbidden("cookie-authenticated request without a CSRF check")


async def authenticate(connection: HTTPConnection, verifier: TokenVerifier) -> Principal:
    token = bearer_token(connection)
    if token is None:
        token = await session_token(connection)
    if token is None:
        raise Unauthorized("missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    try:
        return await verifier.verify(token)
    except Unauthorized as exc:
        exc.headers.setdefault(
            "WWW-Authenticate", f'Bearer error="invalid_token", error_description="{exc.detail}"'
        )
        raise


def check_scopes(principal: Principal, required: tuple[str, ...]) -> Principal:
    missing = principal.missing_scopes(*required)
    if missing:
        challenge = f'Bearer error="insufficient_scope", scope="{" ".join(required)}"'
        raise InsufficientScope(
            f"missing scope: {' '.join(missing)}", headers={"WWW-Authenticate": challenge}
        )
    return principal


def scope_dependency(
    get_verifier: Callable[[HTTPConnection], TokenVerifier], *required: str
) -> Callable[[Request], Awaitable[Principal]]:
    """Build a dependency that authenticates the request and demands `required` scopes."""

    async def dependency(request: Request) -> Principal:
        principal = await authenticate(request, get_verifier(request))
        return check_scopes(principal, required)

    _AUTHENTICATING.add(dependency)
    return dependency


#: Dependencies that refuse with 401/403; the OpenAPI documents those refusals on every route
#: that uses one (`VEZEPyCore.web.openapi`).
_AUTHENTICATING: set[Callable[..., object]] = set()


def is_authenticating(call: object) -> bool:
    # Identity, not hashing: a dependency may be an unhashable callable object.
    return any(call is known for known in _AUTHENTICATING)


def verifier_on_state(connection: HTTPConnection) -> TokenVerifier:
    verifier: TokenVerifier = connection.app.state.verifier
    return verifier
