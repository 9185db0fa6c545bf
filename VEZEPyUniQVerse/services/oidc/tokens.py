"""Signing the provider's tokens.

- Access tokens: JWTs with header `typ: at+jwt` (RFC 9068), signed with the active key, for
  the audiences of the client (Game, Email, and the portal itself for /userinfo).
- ID tokens (OpenID Connect Core section 2): for the client itself (`aud` = client_id).
- Service tokens: access tokens whose subject is a service (`svc:<name>`), no person behind.
- Refresh tokens and authorization codes are opaque random strings; only their SHA-256 is
  stored, so a copy of the database holds nothing a client could present.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Sequence
from typing import Any

from authlib.oidc.core.util import create_half_hash
from joserfc import jwt

from VEZEPyUniQVerse.services.oidc.keys import KeyStore

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a JOSE "typ", not a secret
ID_TOKEN_TYPE = "JWT"  # noqa: S105
#: Service tokens live just long enough for one call; a leaked one is soon worthless.
SERVICE_TOKEN_TTL_SECONDS = 60
PORTAL_SERVICE_SUBJECT = "svc:portal"


def opaque_token() -> str:
    """256 random bits, URL-safe: refresh tokens and authorization codes."""
    return secrets.token_urlsafe(32)


def token_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def sign(keys: KeyStore, claims: dict[str, Any], *, typ: str) -> str:
    active = await keys.signing_key()
    header = {"alg": active.algorithm, "kid": active.kid, "typ": typ}
    return jwt.encode(header, claims, active.key, algorithms=[active.algorithm])


async def issue_access_token(
    keys: KeyStore,
    *,
    issuer: str,
    subject: str,
    audience: Sequence[str],
    scopes: Sequence[str],
    client_id: str,
    ttl_seconds: int,
    extra_claims: dict[str, Any] | None = None,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": list(dict.fromkeys(audience)),
        "iat": now,
        "nbf": now,
        "exp": now + ttl_seconds,
        "jti": secrets.token_urlsafe(16),
        "client_id": client_id,
        "scope": " ".join(sorted(set(scopes))),
    }
    claims.update(extra_claims or {})
    return await sign(keys, claims, typ=ACCESS_TOKEN_TYPE)


async def issue_id_token(
    keys: KeyStore,
    *,
    issuer: str,
    subject: str,
    client_id: str,
    ttl_seconds: int,
    auth_time: int,
    sid: str,
    access_token: str,
    nonce: str | None,
    extra_claims: dict[str, Any] | None = None,
) -> str:
    now = int(time.time())
    active = await keys.signing_key()
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": client_id,
        "azp": client_id,
        "iat": now,
        "exp": now + ttl_seconds,
        "auth_time": auth_time,
        "sid": sid,
        # Core 3.1.3.6: the left half of the access token's hash, with the ID token's alg.
        "at_hash": create_half_hash(access_token, active.algorithm).decode("ascii"),
    }
    if nonce:
        claims["nonce"] = nonce
    claims.update(extra_claims or {})
    header = {"alg": active.algorithm, "kid": active.kid, "typ": ID_TOKEN_TYPE}
    return jwt.encode(header, claims, active.key, algorithms=[active.algorithm])


async def issue_service_token(
    app_state: Any,
    *,
    audience: str,
    scopes: Sequence[str],
    subject: str = PORTAL_SERVICE_SUBJECT,
    ttl_seconds: int = SERVICE_TOKEN_TTL_SECONDS,
) -> str:
    """A short-lived token from the portal to another service, signed with the active key.

    `app_state` is the portal's `app.state` after start-up (it holds `oidc_keys` and
    `settings`). Game and Email verify it through the portal's JWKS like any other token.
    """
    keys: KeyStore = app_state.oidc_keys
    return await issue_access_token(
        keys,
        issuer=app_state.settings.jwt_iss,
        subject=subject,
        audience=[audience],
        scopes=scopes,
        client_id=subject.removeprefix("svc:"),
        ttl_seconds=ttl_seconds,
    )
