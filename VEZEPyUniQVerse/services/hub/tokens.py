"""Access tokens the portal mints for a signed-in person, to call Email and Game for them.

The portal is the OpenID provider, so it signs these like any access token it issues (RFC 9068
`at+jwt`, the active key, verified by the other services through the JWKS). They carry only
the scopes the person's roles allow and live a few minutes: long enough for one page or one
live stream's connection, short enough that a leak is soon worthless.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from VEZEPyUniQVerse.app.security import SigningKeyMissing
from VEZEPyUniQVerse.db.models import User
from VEZEPyUniQVerse.services.oidc.scopes import scopes_for_roles
from VEZEPyUniQVerse.services.oidc.tokens import issue_access_token

#: The client the portal's own calls appear as in the other services' logs.
HUB_CLIENT_ID = "veze-portal-hub"
USER_TOKEN_TTL_SECONDS = 300


async def user_token(
    app_state: Any,
    *,
    user: User,
    audience: str,
    scopes: Sequence[str],
    ttl_seconds: int = USER_TOKEN_TTL_SECONDS,
) -> str:
    """A token that speaks for `user` to `audience`, with `scopes` the user holds anyway."""
    keys = getattr(app_state, "oidc_keys", None)
    if keys is None:
        raise SigningKeyMissing("the portal has no key to sign tokens with")
    allowed = scopes_for_roles(user.roles)
    granted = [scope for scope in scopes if scope in allowed]
    settings = app_state.settings
    return await issue_access_token(
        keys,
        issuer=settings.jwt_iss,
        subject=str(user.id),
        audience=[audience],
        scopes=granted,
        client_id=HUB_CLIENT_ID,
        ttl_seconds=ttl_seconds,
        extra_claims={
            "email": f"{user.handle}@{settings.mail_domain}",
            "preferred_username": user.handle,
        },
    )
