from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from VEZEPyUniQVerse.services.directory.schemas import ServiceStatusRead


class CopilotReply(BaseModel):
    """One server -> client message. Clients must render `text` as text, never as HTML."""

    type: Literal["greeting", "reply", "error"]
    text: str
    command: str | None = Field(None, description="The command that was understood, if any")
    commands: list[str] | None = None
    services: list[ServiceStatusRead] | None = None
