"""Dependency aliases: the shared ones from VEZEPyCore plus this service's settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from VEZEPyCore.web.deps import BusDep, ConnectionDep, SessionDep
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.services.store.blobs import BlobStore

__all__ = ["BlobsDep", "BusDep", "ConnectionDep", "SessionDep", "SettingsDep"]


async def _settings(request: Request) -> EmailSettings:
    settings: EmailSettings = request.app.state.settings
    return settings


SettingsDep = Annotated[EmailSettings, Depends(_settings)]


async def _blobs(request: Request) -> BlobStore:
    blobs: BlobStore = request.app.state.blobs
    return blobs


BlobsDep = Annotated[BlobStore, Depends(_blobs)]


#: Message ids are `integer` columns: a larger id from a URL would make PostgreSQL refuse the
#: query (a 500) instead of the 422 every other bad id gets.
MESSAGE_ID_MAX = 2**31 - 1
MessageIdPath = Annotated[int, Path(ge=1, le=MESSAGE_ID_MAX)]
