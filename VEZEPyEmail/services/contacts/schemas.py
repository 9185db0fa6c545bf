"""Contact suggestion shapes."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ContactRead(BaseModel):
    address: str
    name: str = Field(description="The display name last seen with the address, or empty")
    count: int = Field(description="How many of the scanned messages mention the address")


class ContactList(BaseModel):
    contacts: list[ContactRead]
