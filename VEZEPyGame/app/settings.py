"""Game service settings: the shared core plus its database."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field, model_validator

from VEZEPyCore.settings import CoreSettings


class GameSettings(CoreSettings):
    db_url: str = Field("", validation_alias=AliasChoices("GAME_DB_URL"))

    @model_validator(mode="after")
    def _default_database(self) -> Any:
        if not self.db_url:
            # The default depends on var_dir, which is only known after validation; the model
            # is frozen, so set it through __dict__ once, here.
            self.__dict__["db_url"] = f"sqlite+aiosqlite:///{self.var_dir / 'game.db'}"
        return self
