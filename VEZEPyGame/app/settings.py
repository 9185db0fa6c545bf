"""Game service settings: the shared core plus its database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, model_validator

from VEZEPyCore.settings import (
    MIN_PRODUCTION_SECRET_LENGTH,
    CoreSettings,
    read_or_create_secret,
)
from VEZEPyGame.services.matchmaking.config import CompetitionSettings

BUNDLED_CATALOGUE = Path(__file__).resolve().parents[2] / "config" / "store_catalogue.json"


class GameSettings(CoreSettings, CompetitionSettings):
    db_url: str = Field("", validation_alias=AliasChoices("GAME_DB_URL"))

    # -- matches and the bot (issue 6, the game) ----------------------------------------------
    #: Each side's clock at the start of a match, and what each move adds back (Fischer).
    match_clock_seconds: int = Field(
        120, ge=10, le=3600, validation_alias=AliasChoices("GAME_CLOCK_SECONDS")
    )
    match_increment_seconds: int = Field(
        2, ge=0, le=60, validation_alias=AliasChoices("GAME_CLOCK_INCREMENT")
    )
    #: How often each process looks for matches whose side to move ran out of time.
    match_sweep_seconds: float = Field(
        2.0, ge=0.1, le=300, validation_alias=AliasChoices("GAME_CLOCK_SWEEP_SECONDS")
    )
    #: Seconds the hard bot may think per move.
    bot_think_seconds: float = Field(
        0.4, gt=0, le=10, validation_alias=AliasChoices("GAME_BOT_THINK_SECONDS")
    )
    #: The bot never answers sooner than this after the player's move (milliseconds), so its
    #: stone does not land in the same instant; 0 in tests.
    bot_reply_delay_ms: int = Field(
        350, ge=0, le=5000, validation_alias=AliasChoices("GAME_BOT_REPLY_DELAY_MS")
    )

    @model_validator(mode="after")
    def _default_database(self) -> Any:
        if not self.db_url:
            # The default depends on var_dir, which is only known after validation; the model
            # is frozen, so set it through __dict__ once, here.
            self.__dict__["db_url"] = f"sqlite+aiosqlite:///{self.var_dir / 'game.db'}"
        return self

    # -- store, telemetry and match-summary mail (issue 6) --------------------------------------
    #: The payment provider's webhook secret (HMAC-SHA256). Never in the repository: from the
    #: environment, or in development one generated per installation (see `webhook_secret`).
    store_webhook_secret: SecretStr | None = Field(
        None, validation_alias=AliasChoices("GAME_STORE_WEBHOOK_SECRET")
    )
    #: How far a webhook's signed timestamp may be from our clock, either way.
    store_webhook_tolerance_seconds: int = Field(
        300, ge=30, le=3600, validation_alias=AliasChoices("GAME_STORE_WEBHOOK_TOLERANCE")
    )
    #: The item catalogue; unset means the one in the repository (`BUNDLED_CATALOGUE`).
    store_catalogue_path: Path | None = Field(
        None, validation_alias=AliasChoices("GAME_STORE_CATALOGUE")
    )
    telemetry_max_events: int = Field(
        200, ge=1, le=5000, validation_alias=AliasChoices("GAME_TELEMETRY_MAX_EVENTS")
    )
    telemetry_max_bytes: int = Field(
        65536, ge=1024, le=4_194_304, validation_alias=AliasChoices("GAME_TELEMETRY_MAX_BYTES")
    )
    #: Batches one player may send per minute; beyond it the batch is refused with 429.
    telemetry_batches_per_minute: int = Field(
        30, ge=1, le=10_000, validation_alias=AliasChoices("GAME_TELEMETRY_BATCHES_PER_MINUTE")
    )
    #: Events one player may report per minute before the flood rule flags them.
    telemetry_flood_events_per_minute: int = Field(
        600, ge=10, le=1_000_000, validation_alias=AliasChoices("GAME_TELEMETRY_FLOOD_EVENTS")
    )
    #: The quickest a person can decide and drop a piece; faster moves are flagged.
    telemetry_min_move_ms: int = Field(
        150, ge=0, le=10_000, validation_alias=AliasChoices("GAME_TELEMETRY_MIN_MOVE_MS")
    )
    #: Abandons or re-queues within an hour that get a player flagged.
    telemetry_abandon_threshold: int = Field(
        5, ge=2, le=1000, validation_alias=AliasChoices("GAME_TELEMETRY_ABANDON_THRESHOLD")
    )
    summary_mail_worker: bool = Field(True, validation_alias=AliasChoices("GAME_SUMMARY_WORKER"))
    summary_mail_poll_seconds: float = Field(
        10.0, gt=0, le=600, validation_alias=AliasChoices("GAME_SUMMARY_POLL_SECONDS")
    )
    summary_mail_initial_backoff_seconds: float = Field(
        2.0, gt=0, le=3600, validation_alias=AliasChoices("GAME_SUMMARY_INITIAL_BACKOFF")
    )
    summary_mail_max_backoff_seconds: float = Field(
        900.0, gt=0, le=86_400, validation_alias=AliasChoices("GAME_SUMMARY_MAX_BACKOFF")
    )
    summary_mail_lease_seconds: float = Field(
        60.0, gt=0, le=3600, validation_alias=AliasChoices("GAME_SUMMARY_LEASE_SECONDS")
    )

    @model_validator(mode="after")
    def _refuse_production_without_webhook_secret(self) -> Any:
        if self.environment == "production":
            value = self.store_webhook_secret
            if value is None or len(value.get_secret_value()) < MIN_PRODUCTION_SECRET_LENGTH:
                raise ValueError(
                    "production needs GAME_STORE_WEBHOOK_SECRET of at least "
                    f"{MIN_PRODUCTION_SECRET_LENGTH} characters"
                )
        return self

    def webhook_secret(self) -> str:
        """The store webhook's HMAC key: configured, or in development generated per
        installation under the secrets directory (production refuses to start without one)."""
        if self.store_webhook_secret is not None:
            return self.store_webhook_secret.get_secret_value()
        return read_or_create_secret(self.resolved_secrets_dir / "store-webhook.secret")
