"""Email service settings: the shared core plus its database, mail store and SMTP listeners."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, model_validator

from VEZEPyCore.settings import CoreSettings


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class EmailSettings(CoreSettings):
    db_url: str = Field("", validation_alias=_env("EMAIL_DB_URL"))
    #: Where raw messages are stored (content-addressed, fsynced before the SMTP 250).
    mail_dir: Path | None = Field(None, validation_alias=_env("EMAIL_MAIL_DIR"))

    # SMTP listeners (aiosmtpd), all on one host.
    smtp_enabled: bool = Field(True, validation_alias=_env("EMAIL_SMTP_ENABLED"))
    smtp_host: str = Field("127.0.0.1", validation_alias=_env("EMAIL_SMTP_HOST"))
    smtp_mx_port: int = Field(2525, ge=0, le=65535, validation_alias=_env("EMAIL_SMTP_PORT"))
    smtp_submission_port: int = Field(
        2587, ge=0, le=65535, validation_alias=_env("EMAIL_SUBMISSION_PORT")
    )
    smtps_port: int = Field(2465, ge=0, le=65535, validation_alias=_env("EMAIL_SMTPS_PORT"))
    #: The name this server gives itself in the greeting, EHLO and Received headers.
    smtp_hostname: str = Field("mail.vezeuniqverse.com", validation_alias=_env("EMAIL_HOSTNAME"))
    #: PEM files; without them a self-signed certificate is created under the secrets dir.
    tls_cert_file: Path | None = Field(None, validation_alias=_env("EMAIL_TLS_CERT"))
    tls_key_file: Path | None = Field(None, validation_alias=_env("EMAIL_TLS_KEY"))
    max_message_bytes: int = Field(
        25 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024, validation_alias=_env("EMAIL_MAX_SIZE")
    )
    max_recipients: int = Field(100, ge=1, le=1000, validation_alias=_env("EMAIL_MAX_RECIPIENTS"))
    smtp_session_timeout_seconds: float = Field(
        300, gt=0, le=3600, validation_alias=_env("EMAIL_SMTP_SESSION_TIMEOUT")
    )
    smtp_max_errors: int = Field(10, ge=1, le=100, validation_alias=_env("EMAIL_SMTP_MAX_ERRORS"))
    #: Sessions one client IP may hold open at once, per listener process (421 beyond).
    smtp_max_connections_per_ip: int = Field(
        20, ge=1, le=10_000, validation_alias=_env("EMAIL_SMTP_MAX_CONNECTIONS_PER_IP")
    )
    #: NOOP, RSET, VRFY, EXPN, HELP, HELO and EHLO each, per session (421 beyond).
    smtp_junk_command_limit: int = Field(
        100, ge=1, le=100_000, validation_alias=_env("EMAIL_SMTP_JUNK_COMMAND_LIMIT")
    )
    #: Failed SMTP AUTH attempts per window, per client IP and per login (454 beyond).
    smtp_auth_failures_per_ip: int = Field(
        10, ge=1, le=10_000, validation_alias=_env("EMAIL_SMTP_AUTH_FAILURES_PER_IP")
    )
    smtp_auth_failures_per_login: int = Field(
        5, ge=1, le=10_000, validation_alias=_env("EMAIL_SMTP_AUTH_FAILURES_PER_LOGIN")
    )
    smtp_auth_failure_window_seconds: int = Field(
        300, ge=1, le=86_400, validation_alias=_env("EMAIL_SMTP_AUTH_WINDOW")
    )
    #: The listeners run in their own process (`python -m VEZEPyEmail.smtp_main`); the web
    #: process then starts none, so the ports are never bound twice.
    smtp_separate_process: bool = Field(False, validation_alias=_env("EMAIL_SMTP_SEPARATE"))
    #: Listener processes `smtp_main` runs on the same ports (SO_REUSEPORT when above 1).
    smtp_processes: int = Field(1, ge=1, le=64, validation_alias=_env("EMAIL_SMTP_PROCESSES"))

    # -- MX intake: accepted first, delivered behind the listener (services/intake) ---------
    #: How long delivery may wait for a busy MX listener before it runs regardless.
    intake_max_delay_seconds: float = Field(
        10.0, ge=0, le=3600, validation_alias=_env("EMAIL_INTAKE_MAX_DELAY_SECONDS")
    )
    #: A deliverer's hold on the rows it is delivering; a dead one's rows wait this long.
    intake_lease_seconds: float = Field(
        120.0, ge=1, le=86_400, validation_alias=_env("EMAIL_INTAKE_LEASE_SECONDS")
    )
    #: Delivery attempts of one accepted message before it is left to the operator.
    intake_max_attempts: int = Field(
        20, ge=1, le=10_000, validation_alias=_env("EMAIL_INTAKE_MAX_ATTEMPTS")
    )
    #: Accepted messages waiting for delivery above which the MX answers 452 (try later).
    intake_max_backlog: int = Field(
        100_000, ge=1, le=100_000_000, validation_alias=_env("EMAIL_INTAKE_MAX_BACKLOG")
    )

    # -- outbound delivery (services/outbound, services/dkim) --------------------------------
    #: Static routes checked before DNS: "example.com=127.0.0.1:2526,*=relay:25" (tests, dev).
    outbound_mx_overrides: str = Field("", validation_alias=_env("EMAIL_MX_OVERRIDES"))
    #: host:port that takes all remote mail (after the override map, instead of MX lookups).
    outbound_smarthost: str | None = Field(None, validation_alias=_env("EMAIL_SMARTHOST"))
    #: First retry delay in seconds; each further failure doubles it (with jitter).
    outbound_backoff_seconds: float = Field(
        60.0, gt=0, le=86400, validation_alias=_env("EMAIL_OUTBOUND_BACKOFF")
    )
    outbound_max_backoff_seconds: float = Field(
        3600.0, gt=0, le=86400, validation_alias=_env("EMAIL_OUTBOUND_MAX_BACKOFF")
    )
    #: How long to keep retrying before bouncing (RFC 5321 4.5.4.1 suggests 4-5 days).
    outbound_lifetime_seconds: float = Field(
        5 * 86400.0, gt=0, validation_alias=_env("EMAIL_OUTBOUND_LIFETIME")
    )
    outbound_worker: bool = Field(True, validation_alias=_env("EMAIL_OUTBOUND_WORKER"))
    #: A claimed task not finished within this time is taken over by another worker; keep it
    #: above the longest attempt (MAX_HOSTS_PER_ATTEMPT hosts x the SMTP timeouts).
    outbound_lease_seconds: float = Field(
        900.0, gt=0, le=86400, validation_alias=_env("EMAIL_OUTBOUND_LEASE")
    )
    outbound_poll_seconds: float = Field(
        30.0, gt=0, le=3600, validation_alias=_env("EMAIL_OUTBOUND_POLL")
    )
    #: Seconds for each SMTP command and for each DNS query of a delivery attempt.
    outbound_smtp_timeout_seconds: float = Field(
        60.0, gt=0, le=600, validation_alias=_env("EMAIL_OUTBOUND_SMTP_TIMEOUT")
    )
    outbound_dns_timeout_seconds: float = Field(
        5.0, gt=0, le=60, validation_alias=_env("EMAIL_OUTBOUND_DNS_TIMEOUT")
    )
    #: Verify the remote certificate on STARTTLS (off: opportunistic TLS, RFC 7435).
    outbound_verify_tls: bool = Field(False, validation_alias=_env("EMAIL_OUTBOUND_VERIFY_TLS"))
    dkim_selector: str = Field("veze1", validation_alias=_env("EMAIL_DKIM_SELECTOR"))
    # -- end outbound delivery ----------------------------------------------------------------

    # -- sending over HTTP (services/compose, services/uploads) --------------------------------
    #: Largest single attachment upload; a whole message stays within `max_message_bytes`.
    upload_max_bytes: int = Field(
        20 * 1024 * 1024, ge=1, le=200 * 1024 * 1024, validation_alias=_env("EMAIL_UPLOAD_MAX_SIZE")
    )
    #: An upload no message or draft has used is deleted after this many seconds.
    upload_ttl_seconds: float = Field(
        24 * 3600.0, gt=0, le=30 * 86400, validation_alias=_env("EMAIL_UPLOAD_TTL")
    )
    #: Messages one user may send over HTTP per window (`POST /api/send`, draft send).
    send_rate_limit: int = Field(100, ge=1, le=100_000, validation_alias=_env("EMAIL_SEND_RATE"))
    send_rate_window_seconds: int = Field(
        3600, ge=1, le=86400, validation_alias=_env("EMAIL_SEND_RATE_WINDOW")
    )
    # -- end sending over HTTP ----------------------------------------------------------------

    @model_validator(mode="after")
    def _defaults_under_var_dir(self) -> Any:
        # frozen model: derived defaults are set through __dict__ once, during validation
        if not self.db_url:
            self.__dict__["db_url"] = f"sqlite+aiosqlite:///{self.var_dir / 'email.db'}"
        if self.mail_dir is None:
            self.__dict__["mail_dir"] = self.var_dir / "mail"
        return self

    @property
    def resolved_mail_dir(self) -> Path:
        assert self.mail_dir is not None
        return self.mail_dir
