"""Email service settings: the shared core plus its database."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field, model_validator

from VEZEPyCore.settings import CoreSettings


class EmailSettings(CoreSettings):
    db_url: str = Field("", validation_alias=AliasChoices("EMAIL_DB_URL"))

    @model_validator(mode="after")
    def _default_database(self) -> Any:
        if not self.db_url:
            # frozen model: set through __dict__ once, during validation
            self.__dict__["db_url"] = f"sqlite+aiosqlite:///{self.var_dir / 'email.db'}"
        return self
