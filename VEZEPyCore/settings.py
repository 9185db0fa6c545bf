"""Settings shared by every service, read from the environment by pydantic-settings.

The environment names are the ones the project brief fixed (`VEZE_JWT_DEMO`, `REDIS_URL`, ...),
so they are spelled out as aliases rather than derived from a prefix.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Secrets that must never sign tokens outside development: the ones people paste from docs.
WEAK_SECRETS = frozenset({"", "secret", "changeme", "change-me", "dev", "demo", "test", "password"})
MIN_PRODUCTION_SECRET_LENGTH = 32

Environment = Literal["development", "test", "production"]


def _env(*names: str) -> Any:
    return Field(validation_alias=AliasChoices(*names))


class CoreSettings(BaseSettings):
    """What every service reads. Each service subclasses this to add its own database URL."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    environment: Environment = Field("development", validation_alias=AliasChoices("VEZE_ENV"))
    jwt_demo: bool = Field(False, validation_alias=AliasChoices("VEZE_JWT_DEMO"))
    jwks_url: str | None = Field(None, validation_alias=AliasChoices("VEZE_JWKS_URL"))
    jwt_secret: SecretStr | None = Field(None, validation_alias=AliasChoices("VEZE_JWT_SECRET"))
    jwt_iss: str = Field("http://127.0.0.1:8000", validation_alias=AliasChoices("VEZE_JWT_ISS"))
    email_aud: str = Field("veze-email", validation_alias=AliasChoices("VEZE_EMAIL_AUD"))
    game_aud: str = Field("veze-game", validation_alias=AliasChoices("VEZE_GAME_AUD"))
    portal_aud: str = Field("veze-portal", validation_alias=AliasChoices("VEZE_PORTAL_AUD"))
    jwt_leeway_seconds: int = Field(
        30, ge=0, le=300, validation_alias=AliasChoices("VEZE_JWT_LEEWAY")
    )
    redis_url: str | None = Field(
        None, validation_alias=AliasChoices("REDIS_URL", "VEZE_REDIS_URL")
    )
    #: Durable queues (VEZEPyCore.queue): with Redis configured, dispatch jobs over Redis
    #: Streams (the database stays the record); off keeps the database loop alone.
    queue_streams: bool = Field(True, validation_alias=AliasChoices("VEZE_QUEUE_STREAMS"))
    #: A consumer's unacknowledged entries are taken over by a live one (XAUTOCLAIM) once
    #: idle this long; a job is rerun only once its database lease has run out as well.
    queue_claim_idle_seconds: float = Field(
        30.0, gt=0, le=3600, validation_alias=AliasChoices("VEZE_QUEUE_CLAIM_IDLE")
    )
    #: Key prefix of the queues' streams (`<prefix>:<queue>`, `...:delayed`, `...:dead`).
    queue_stream_prefix: str = Field(
        "veze:queue", min_length=1, validation_alias=AliasChoices("VEZE_QUEUE_STREAM_PREFIX")
    )
    otel_enabled: bool = Field(False, validation_alias=AliasChoices("OTEL_ENABLED"))
    otel_endpoint: str | None = Field(
        None, validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    #: Largest request body a route takes unless its router names a larger one (413 beyond).
    max_body_bytes: int = Field(
        1024 * 1024, ge=1024, validation_alias=AliasChoices("VEZE_MAX_BODY_BYTES")
    )
    var_dir: Path = Field(Path("var"), validation_alias=AliasChoices("VEZE_VAR_DIR"))
    secrets_dir: Path | None = Field(None, validation_alias=AliasChoices("VEZE_SECRETS_DIR"))
    mail_domain: str = Field("vezeuniqverse.com", validation_alias=AliasChoices("VEZE_MAIL_DOMAIN"))
    #: Cookies with the Secure flag; unset means "only in production" (dev runs on plain HTTP).
    cookie_secure: bool | None = Field(None, validation_alias=AliasChoices("VEZE_COOKIE_SECURE"))
    http_timeout_seconds: float = Field(
        5.0, gt=0, le=60, validation_alias=AliasChoices("VEZE_HTTP_TIMEOUT")
    )
    #: PostgreSQL only, for the services' own connections (not migrations or commands): a
    #: statement running longer is cancelled (the request gets a 503), a transaction left idle
    #: longer is ended by the server, so a stuck query or a leaked transaction cannot hold
    #: locks for long. 0 turns a limit off.
    db_statement_timeout_seconds: float = Field(
        30.0, ge=0, le=3600, validation_alias=AliasChoices("VEZE_DB_STATEMENT_TIMEOUT")
    )
    db_idle_in_transaction_timeout_seconds: float = Field(
        60.0, ge=0, le=3600, validation_alias=AliasChoices("VEZE_DB_IDLE_IN_TRANSACTION_TIMEOUT")
    )
    #: Service name -> base URL, from `VEZE_SERVICE_<NAME>` or `<NAME>_BASE_URL` (first wins).
    service_urls: dict[str, str] = Field(default_factory=dict)
    #: Service name -> the URL people's browsers use (`VEZE_PUBLIC_URL_<NAME>`), when it differs
    #: from the URL services call each other on (container names in compose).
    public_urls: dict[str, str] = Field(default_factory=dict)
    #: Service names whose calls go to the in-process app (`<NAME>_ASGI=1`), for tests and dev.
    asgi_services: frozenset[str] = Field(default_factory=frozenset)

    @model_validator(mode="before")
    @classmethod
    def _collect_service_environment(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "service_urls" not in data:
            data["service_urls"] = service_urls_from_environment(os.environ)
        if "public_urls" not in data:
            data["public_urls"] = {
                key[len("VEZE_PUBLIC_URL_") :].lower(): value.rstrip("/")
                for key, value in os.environ.items()
                if key.startswith("VEZE_PUBLIC_URL_") and value
            }
        if "asgi_services" not in data:
            data["asgi_services"] = frozenset(
                key[: -len("_ASGI")].lower()
                for key, value in os.environ.items()
                if key.endswith("_ASGI") and value.strip().lower() in {"1", "true", "yes"}
            )
        return data

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> CoreSettings:
        if self.environment != "production":
            return self
        if self.jwt_demo:
            raise ValueError("VEZE_JWT_DEMO must not be set when VEZE_ENV=production")
        if self.jwt_secret is not None:
            value = self.jwt_secret.get_secret_value()
            if value.lower() in WEAK_SECRETS or len(value) < MIN_PRODUCTION_SECRET_LENGTH:
                raise ValueError(
                    "VEZE_JWT_SECRET is a default or shorter than "
                    f"{MIN_PRODUCTION_SECRET_LENGTH} characters; refusing to start in production"
                )
        elif self.jwks_url is None:
            raise ValueError("production needs VEZE_JWKS_URL or VEZE_JWT_SECRET")
        return self

    @property
    def secure_cookies(self) -> bool:
        return (
            self.cookie_secure
            if self.cookie_secure is not None
            else self.environment == "production"
        )

    @property
    def resolved_secrets_dir(self) -> Path:
        return self.secrets_dir if self.secrets_dir is not None else self.var_dir / "secrets"

    def client_secret(self, client_id: str) -> str | None:
        """An OAuth client's secret: `VEZE_CLIENT_SECRET_<ID>` (dashes as underscores), or in
        development one generated per installation and shared through the secrets directory.
        """
        name = "VEZE_CLIENT_SECRET_" + client_id.upper().replace("-", "_")
        configured = os.environ.get(name)
        if configured:
            return configured
        if self.environment == "production":
            return None
        return read_or_create_secret(self.resolved_secrets_dir / f"client-{client_id}.secret")

    def hs256_secret(self) -> str | None:
        """The HS256 secret: configured, or in development a per-installation generated one.

        Generating it (instead of shipping a default) keeps secrets out of the repository while
        letting `honcho start` work with no configuration: all services on the machine share
        the file under the secrets directory.
        """
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        if self.environment == "production":
            return None
        return read_or_create_secret(self.resolved_secrets_dir / "jwt-hs256.key")


def service_urls_from_environment(environ: os._Environ[str] | dict[str, str]) -> dict[str, str]:
    """`VEZE_SERVICE_<NAME>` beats `<NAME>_BASE_URL`; names are lower-cased."""
    urls: dict[str, str] = {}
    for key, value in environ.items():
        if key.endswith("_BASE_URL") and value:
            urls.setdefault(key[: -len("_BASE_URL")].lower(), value.rstrip("/"))
    for key, value in environ.items():
        if key.startswith("VEZE_SERVICE_") and value:
            urls[key[len("VEZE_SERVICE_") :].lower()] = value.rstrip("/")
    return urls


def read_or_create_secret(path: Path) -> str:
    """Read a secret file, creating it atomically (first writer wins) when it is missing."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48))
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(candidate, path)  # atomic: a concurrent starter's link fails, and it reads ours
    except FileExistsError:
        pass
    finally:
        candidate.unlink()
    return path.read_text().strip()
