"""FastAPI dependencies: bearer extraction and scope checks.

401 for a missing or invalid token, 403 for a missing scope, both with a JSON reason and the
`WWW-Authenticate` challenge of RFC 6750.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from starlette.requests import HTTPConnection

from VEZEPyCore.auth.principal import Principal
from VEZEPyCore.auth.tokens import TokenVerifier
from VEZEPyCore.errors import InsufficientScope, Unauthorized


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


async def authenticate(connection: HTTPConnection, verifier: TokenVerifier) -> Principal:
    token = bearer_token(connection)
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

    return dependency


def verifier_on_state(connection: HTTPConnection) -> TokenVerifier:
    verifier: TokenVerifier = connection.app.state.verifier
    return verifier
