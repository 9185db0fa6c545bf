"""What the copilot sends: replies with text, optional links and a pending confirmation."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from VEZEPyUniQVerse.services.directory.schemas import ServiceStatusRead


class CopilotLink(BaseModel):
    label: str
    url: str


class CopilotReply(BaseModel):
    """One server -> client message. Clients must render `text` as text, never as HTML."""

    type: Literal["greeting", "reply", "confirm", "error"]
    text: str
    command: str | None = Field(None, description="The command that was understood, if any")
    commands: list[str] | None = None
    services: list[ServiceStatusRead] | None = None
    links: list[CopilotLink] | None = None
    #: Present on `confirm` replies: answer yes or no before anything is sent or changed.
    pending: str | None = None
