from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI

from VEZEPyGame.app.main import create_app
from VEZEPyGame.app.settings import GameSettings

GameAppFactory = Callable[..., FastAPI]
Running = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def make_game_app(game_settings: GameSettings) -> GameAppFactory:
    """`make_game_app(service_urls=..., http_timeout_seconds=...)`: a Game app with overrides."""

    def make(**overrides: Any) -> FastAPI:
        return create_app(game_settings.model_copy(update=overrides))

    return make


@pytest.fixture
def game_app(game_settings: GameSettings) -> FastAPI:
    return create_app(game_settings)


@pytest.fixture
async def game_client(game_app: FastAPI, running: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with running(game_app) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """Redis keys of this test only (the Redis is shared; the database is fresh per test)."""
    prefix = f"test:{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
