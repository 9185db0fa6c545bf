"""Request and response of `POST /internal/auth/verify`."""

from __future__ import annotations

from pydantic import BaseModel, Field


class PasswordCheckCreate(BaseModel):
    handle: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)
    #: The end client's address as the calling service saw it (the SMTP peer), for limits.
    remote_ip: str | None = Field(None, max_length=64)


class PasswordCheckRead(BaseModel):
    handle: str
    email: str
