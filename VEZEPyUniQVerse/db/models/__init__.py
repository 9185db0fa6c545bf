"""Portal tables (SQLAlchemy 2.0), one module per capability; all share one `Base`."""

from VEZEPyUniQVerse.db.models.accounts import AppPassword, RecoveryCode, User, WebSession
from VEZEPyUniQVerse.db.models.audit import AuditEvent
from VEZEPyUniQVerse.db.models.base import Base
from VEZEPyUniQVerse.db.models.oauth import (
    AuthorizationCode,
    OAuthClient,
    RefreshToken,
    SigningKey,
)
from VEZEPyUniQVerse.db.models.provisioning import (
    PROVISIONING_STATUSES,
    Provisioning,
    ProvisioningStatus,
)

__all__ = [
    "PROVISIONING_STATUSES",
    "AppPassword",
    "AuditEvent",
    "AuthorizationCode",
    "Base",
    "OAuthClient",
    "Provisioning",
    "ProvisioningStatus",
    "RecoveryCode",
    "RefreshToken",
    "SigningKey",
    "User",
    "WebSession",
]
