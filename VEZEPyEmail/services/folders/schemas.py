from __future__ import annotations

from pydantic import BaseModel, Field


class FolderRead(BaseModel):
    name: str
    special_use: str | None = Field(description="RFC 6154 role: inbox, sent, drafts, junk, ...")
    total: int
    unread: int


class FolderList(BaseModel):
    user: str
    folders: list[FolderRead]


class FolderCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128)


class FolderUpdate(BaseModel):
    name: str = Field(min_length=1, max_length=128, description="The new name")


class FolderDeleteRead(BaseModel):
    name: str
    moved_to_trash: int = Field(description="How many messages were moved to Trash")
