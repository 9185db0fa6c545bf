from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

ServiceState = Literal["up", "down", "slow"]


class ServiceStatusRead(BaseModel):
    name: str
    title: str
    description: str
    url: str
    status: ServiceState = Field(
        description="up: /health answered 200; down: refused or an error; slow: no answer in time"
    )
    version: str | None = None
    latency_ms: int | None = Field(None, description="How long /health took to answer")
    detail: str | None = Field(None, description="Why the service is not up")


class ServiceDirectoryRead(BaseModel):
    services: list[ServiceStatusRead]
