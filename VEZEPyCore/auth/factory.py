"""Build a service's `TokenVerifier` from its settings."""

from __future__ import annotations

import httpx

from VEZEPyCore.auth.tokens import JWKSCache, TokenVerifier
from VEZEPyCore.settings import CoreSettings


def build_verifier(
    settings: CoreSettings, *, audience: str, http_client: httpx.AsyncClient
) -> TokenVerifier:
    jwks = JWKSCache(settings.jwks_url, http_client) if settings.jwks_url else None
    return TokenVerifier(
        issuer=settings.jwt_iss,
        audience=audience,
        secret=settings.hs256_secret(),
        jwks=jwks,
        demo=settings.jwt_demo,
        mail_domain=settings.mail_domain,
        leeway_seconds=settings.jwt_leeway_seconds,
    )
