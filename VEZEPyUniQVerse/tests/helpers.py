"""Small helpers for portal tests (imported by the cross-service tests too)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from VEZEPyCore.testing import free_port, serve_app
from VEZEPyUniQVerse.app.settings import PortalSettings

Running = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]
Minter = Callable[..., str]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def with_changes(settings: PortalSettings, **changes: Any) -> PortalSettings:
    """The test settings with some fields changed (settings are frozen, so this copies)."""
    return settings.model_copy(update=changes)


def dead_url() -> str:
    """A loopback URL where nothing listens, so connections are refused at once."""
    return f"http://127.0.0.1:{free_port()}"


@asynccontextmanager
async def serve_stalled() -> AsyncIterator[str]:
    """Serve, on a real port, an app whose every request hangs until the block exits.

    The stand-in for a service that accepts connections but never answers; released before
    the server shuts down so that uvicorn's graceful shutdown does not wait on it.
    """
    release = asyncio.Event()
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def hang(path: str) -> dict[str, str]:
        await release.wait()
        return {"path": path}

    async with serve_app(app) as url:
        try:
            yield url
        finally:
            release.set()
