"""Portal settings: the shared core plus its database and the directory's probe timeout."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field, model_validator

from VEZEPyCore.settings import CoreSettings


class PortalSettings(CoreSettings):
    db_url: str = Field("", validation_alias=AliasChoices("UNI_DB_URL"))
    #: How long the service directory waits for a service's `/health` before calling it slow.
    health_timeout_seconds: float = Field(
        2.0, gt=0, le=30, validation_alias=AliasChoices("UNI_HEALTH_TIMEOUT")
    )

    @model_validator(mode="after")
    def _default_database(self) -> Any:
        if not self.db_url:
            # frozen model: set through __dict__ once, during validation
            self.__dict__["db_url"] = f"sqlite+aiosqlite:///{self.var_dir / 'portal.db'}"
        return self
