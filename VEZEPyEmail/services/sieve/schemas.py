"""Request and response bodies of /api/rules."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from VEZEPyEmail.services.sieve.compiler import MAX_SCRIPT_BYTES


class RuleUpdate(BaseModel):
    script: str = Field(
        max_length=MAX_SCRIPT_BYTES,
        description="A Sieve script (RFC 5228) in the supported subset; see docs/email-rules.md",
    )


class RuleRead(BaseModel):
    user: str
    active: bool = Field(description="False when the mailbox has no rules (script is empty)")
    script: str
    updated_at: datetime | None
    last_error: str | None = Field(
        description="Why a delivery could not follow the script as written, if it happened"
    )
    last_error_at: datetime | None


class RuleTest(BaseModel):
    message_id: int = Field(ge=1, le=2**62, description="A message of the caller's mailbox")
    script: str | None = Field(
        None,
        max_length=MAX_SCRIPT_BYTES,
        description="The script to try; without it the active script is used",
    )


class RuleTestRead(BaseModel):
    """What the rules would do with the message; nothing is changed or sent."""

    folders: list[str] = Field(description="Where copies would be stored; empty when none")
    flags: list[str]
    labels: list[str]
    discarded: bool
    redirects: list[str]
    vacation: bool = Field(
        description="Whether a vacation action ran (the reply may still be "
        "suppressed at delivery: lists, bulk mail, already answered)"
    )
    notes: list[str]
