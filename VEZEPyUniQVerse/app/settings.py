"""Portal settings: the shared core plus its database and the directory's probe timeout."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import NoDecode

from VEZEPyCore.settings import CoreSettings


class PortalSettings(CoreSettings):
    db_url: str = Field("", validation_alias=AliasChoices("UNI_DB_URL"))
    #: How long the service directory waits for a service's `/health` before calling it slow.
    health_timeout_seconds: float = Field(
        2.0, gt=0, le=30, validation_alias=AliasChoices("UNI_HEALTH_TIMEOUT")
    )
    #: Handles that get the admin role when they sign up (`UNI_ADMIN_HANDLES=alice,bob`).
    admin_handles: Annotated[frozenset[str], NoDecode] = Field(
        frozenset(), validation_alias=AliasChoices("UNI_ADMIN_HANDLES")
    )

    @field_validator("admin_handles", mode="before")
    @classmethod
    def _split_admin_handles(cls, value: Any) -> Any:
        if isinstance(value, str):
            return frozenset(part.strip().lower() for part in value.split(",") if part.strip())
        return value

    #: Provisioning worker (services/provisioning/worker.py): the first retry waits about
    #: this long, each further one twice as long (with +-10% jitter) up to the maximum.
    provisioning_initial_backoff_seconds: float = Field(
        2.0, gt=0, le=3600, validation_alias=AliasChoices("UNI_PROVISIONING_BACKOFF")
    )
    provisioning_max_backoff_seconds: float = Field(
        300.0, gt=0, le=86400, validation_alias=AliasChoices("UNI_PROVISIONING_MAX_BACKOFF")
    )
    #: How often a worker looks for due tasks when nothing woke it (other portal workers'
    #: sign-ups only reach it this way).
    provisioning_poll_seconds: float = Field(
        2.0, gt=0, le=300, validation_alias=AliasChoices("UNI_PROVISIONING_POLL")
    )
    #: How long a claimed task is reserved for its worker; a worker that dies mid-call lets it
    #: fall due again after this. Keep it well above the HTTP timeout.
    provisioning_lease_seconds: float = Field(
        60.0, gt=0, le=3600, validation_alias=AliasChoices("UNI_PROVISIONING_LEASE")
    )
    #: Give a task up (dead letter, `python -m VEZEPyCore.queue dead-letters`) after this
    #: many attempts; 0 retries for ever (the account exists; an alert watches the backlog).
    provisioning_max_attempts: int = Field(
        0, ge=0, le=10_000, validation_alias=AliasChoices("UNI_PROVISIONING_MAX_ATTEMPTS")
    )
    #: Off for a portal process that should only serve requests (the queue still fills).
    provisioning_worker: bool = Field(
        True, validation_alias=AliasChoices("UNI_PROVISIONING_WORKER")
    )

    #: OpenID Connect provider (services/oidc/): access and ID tokens live this long; keep it
    #: short, they cannot be revoked before they expire (RFC 9068 JWTs, verified offline).
    access_token_ttl_seconds: int = Field(
        300, ge=30, le=3600, validation_alias=AliasChoices("UNI_ACCESS_TOKEN_TTL")
    )
    #: Refresh tokens (rotated on every use) expire after this long without use.
    refresh_token_ttl_seconds: int = Field(
        30 * 24 * 3600,
        ge=300,
        le=365 * 24 * 3600,
        validation_alias=AliasChoices("UNI_REFRESH_TOKEN_TTL"),
    )

    @model_validator(mode="after")
    def _default_database(self) -> Any:
        if not self.db_url:
            # frozen model: set through __dict__ once, during validation
            self.__dict__["db_url"] = f"sqlite+aiosqlite:///{self.var_dir / 'portal.db'}"
        return self
