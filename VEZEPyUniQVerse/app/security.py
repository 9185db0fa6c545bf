"""Who may do what in the portal, and the service tokens the portal mints for itself.

Tokens must carry the portal audience. Provisioning is a service operation: it needs the
`portal.provision` scope, which no ordinary user holds.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from VEZEPyCore.auth import scopes
from VEZEPyCore.auth.deps import scope_dependency, verifier_on_state
from VEZEPyCore.auth.principal import Principal
from VEZEPyCore.auth.tokens import issue_hs256_token
from VEZEPyCore.errors import AppError
from VEZEPyUniQVerse.app.settings import PortalSettings

#: Service tokens live just long enough for one call; a leaked one is soon worthless.
SERVICE_TOKEN_TTL_SECONDS = 60
PORTAL_SUBJECT = "svc:portal"

ProvisionPrincipal = Annotated[
    Principal, Depends(scope_dependency(verifier_on_state, scopes.PORTAL_PROVISION))
]


class SigningKeyMissing(AppError):
    status_code, code = 503, "not_configured"


def email_service_token(settings: PortalSettings) -> str:
    """A short-lived token that lets the portal administer mailboxes in the Email service."""
    secret = settings.hs256_secret()
    if secret is None:
        # Production without VEZE_JWT_SECRET: asymmetric signing comes with the OIDC provider.
        raise SigningKeyMissing("the portal has no key to sign service tokens with")
    return issue_hs256_token(
        secret=secret,
        issuer=settings.jwt_iss,
        subject=PORTAL_SUBJECT,
        audience=settings.email_aud,
        scopes=[scopes.EMAIL_ADMIN],
        ttl_seconds=SERVICE_TOKEN_TTL_SECONDS,
    )
