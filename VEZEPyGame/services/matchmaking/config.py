"""Settings of the competitive layer (`GAME_MM_*`, `GAME_SEASON_DAYS`, `GAME_LEADERBOARD_*`).

`GameSettings` inherits them, so they are read, overridden (`make_game_app(...)`) and
documented like every other game setting; the competitive layer itself only depends on this
class.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from VEZEPyGame.services.matchmaking.pairing import Window


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


class CompetitionSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    #: Run the matchmaker loop in this process (every web worker may; claims are atomic).
    matchmaker_enabled: bool = Field(True, validation_alias=_env("GAME_MM_ENABLED"))
    #: Seconds between pairing passes when nothing wakes the loop sooner.
    matchmaker_poll_seconds: float = Field(
        1.0, gt=0, le=60, validation_alias=_env("GAME_MM_POLL_SECONDS")
    )
    #: Rating gap a fresh ticket accepts.
    matchmaker_window_base: float = Field(
        50.0, ge=0, le=5000, validation_alias=_env("GAME_MM_WINDOW_BASE")
    )
    #: How much the window widens per second of waiting.
    matchmaker_window_growth: float = Field(
        10.0, ge=0, le=5000, validation_alias=_env("GAME_MM_WINDOW_GROWTH")
    )
    #: The widest a window gets.
    matchmaker_window_max: float = Field(
        400.0, ge=0, le=10_000, validation_alias=_env("GAME_MM_WINDOW_MAX")
    )
    #: Seconds without a human opponent before a bot takes the seat; 0 turns bots off.
    matchmaker_bot_after_seconds: float = Field(
        30.0, ge=0, le=3600, validation_alias=_env("GAME_MM_BOT_AFTER_SECONDS")
    )
    #: Regions a ticket may name, comma-separated (the player's profile region is the default).
    matchmaker_regions: str = Field(
        "eu,na,sa,asia,oce,af",
        max_length=200,
        pattern=r"^[a-z]{2,16}(,[a-z]{2,16})*$",
        validation_alias=_env("GAME_MM_REGIONS"),
    )
    #: Queue joins one player may make per minute (429 beyond): join/leave loops would
    #: otherwise wake every matchmaker at will.
    matchmaker_joins_per_minute: int = Field(
        20, ge=1, le=10_000, validation_alias=_env("GAME_MM_JOINS_PER_MINUTE")
    )
    #: Length of a season that starts by itself when the previous one has ended.
    season_days: int = Field(90, ge=1, le=3650, validation_alias=_env("GAME_SEASON_DAYS"))
    #: How often the Redis leaderboards are re-fed the SQL rows changed lately (a crash between
    #: an SQL commit and its Redis write is repaired by this).
    leaderboard_reconcile_seconds: float = Field(
        60.0, gt=0, le=3600, validation_alias=_env("GAME_LEADERBOARD_RECONCILE_SECONDS")
    )

    #: Prefix of the leaderboards' Redis keys (several installations may share one Redis).
    leaderboard_redis_prefix: str = Field(
        "game:lb",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9:_.-]+$",
        validation_alias=_env("GAME_LEADERBOARD_REDIS_PREFIX"),
    )

    @model_validator(mode="after")
    def _window_ordered(self) -> CompetitionSettings:
        if self.matchmaker_window_max < self.matchmaker_window_base:
            raise ValueError("GAME_MM_WINDOW_MAX must not be below GAME_MM_WINDOW_BASE")
        return self

    @property
    def window(self) -> Window:
        return Window(
            self.matchmaker_window_base, self.matchmaker_window_growth, self.matchmaker_window_max
        )

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(self.matchmaker_regions.split(","))

    @property
    def bot_after(self) -> float | None:
        return self.matchmaker_bot_after_seconds or None
