"""Upload response shapes."""

from __future__ import annotations

from pydantic import BaseModel, Field


class UploadRead(BaseModel):
    id: str = Field(description="Opaque id; list it in a draft's or message's `attachments`")
    filename: str = Field(description="The sanitised file name the attachment will carry")
    size: int = Field(description="Size in bytes")
    content_type: str
