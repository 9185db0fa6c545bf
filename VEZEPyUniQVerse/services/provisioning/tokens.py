"""The service tokens the portal presents when it provisions resources in Game and Email.

One function so the signing choice lives in one place: the OIDC provider's active asymmetric
key when the portal has one (always, once the provider has started; Game and Email verify it
through the portal's JWKS), else the HS256 development secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from VEZEPyCore.auth.tokens import issue_hs256_token
from VEZEPyUniQVerse.app.security import (
    PORTAL_SUBJECT,
    SERVICE_TOKEN_TTL_SECONDS,
    SigningKeyMissing,
)
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.services.oidc.tokens import issue_service_token


async def service_token(app_state: Any, *, audience: str, scopes: Sequence[str]) -> str:
    """A short-lived token for one call from the portal to `audience` with `scopes`."""
    if getattr(app_state, "oidc_keys", None) is not None:
        return await issue_service_token(
            app_state,
            audience=audience,
            scopes=scopes,
            subject=PORTAL_SUBJECT,
            ttl_seconds=SERVICE_TOKEN_TTL_SECONDS,
        )
    settings: PortalSettings = app_state.settings
    secret = settings.hs256_secret()
    if secret is None:
        raise SigningKeyMissing("the portal has no key to sign service tokens with")
    return issue_hs256_token(
        secret=secret,
        issuer=settings.jwt_iss,
        subject=PORTAL_SUBJECT,
        audience=audience,
        scopes=list(scopes),
        ttl_seconds=SERVICE_TOKEN_TTL_SECONDS,
    )
