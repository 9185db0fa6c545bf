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
    PROVISIONING_TARGETS,
    Provisioning,
    ProvisioningStatus,
    ProvisioningTarget,
    ProvisioningTask,
)

__all__ = [
    "PROVISIONING_STATUSES",
    "PROVISIONING_TARGETS",
    "AppPassword",
    "AuditEvent",
    "AuthorizationCode",
    "Base",
    "OAuthClient",
    "Provisioning",
    "ProvisioningStatus",
    "ProvisioningTarget",
    "ProvisioningTask",
    "RecoveryCode",
    "RefreshToken",
    "SigningKey",
    "User",
    "WebSession",
]
