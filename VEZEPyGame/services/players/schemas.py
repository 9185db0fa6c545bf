"""Player profiles over the API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from VEZEPyGame.db.models import HANDLE_MAX_LENGTH

#: The portal's handles (and so mailbox local parts): letters, digits, dot, hyphen, underscore.
HANDLE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class PlayerCreate(BaseModel):
    handle: str = Field(min_length=1, max_length=HANDLE_MAX_LENGTH, pattern=HANDLE_PATTERN)
    display_name: str = Field("", max_length=200)

    @field_validator("handle")
    @classmethod
    def _lower_case(cls, value: str) -> str:
        return value.lower()

    @field_validator("display_name")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()


class PlayerRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    handle: str
    display_name: str
    region: str
    avatar_colour: str
    mail_opt_in: bool
    created_at: datetime


class PlayerProvisionRead(PlayerRead):
    created: bool = Field(description="True when this call created the player")
