"""The schema comes from the Alembic migrations, and the models agree with it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi import FastAPI
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import IntegrityError

from VEZEPyCore.db.migrations import downgrade
from VEZEPyGame.app.main import MIGRATIONS
from VEZEPyGame.app.settings import GameSettings
from VEZEPyGame.db.models import Base

INSERT_PLAYER = text("INSERT INTO players (handle, created_at) VALUES (:handle, :created_at)")


def _schema_drift(connection: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


def _table_names(connection: Connection) -> list[str]:
    return inspect(connection).get_table_names()


async def test_start_up_creates_players_matching_the_models(
    game_app: FastAPI, game_client: httpx.AsyncClient
) -> None:
    async with game_app.state.engine.connect() as connection:
        assert await connection.run_sync(_schema_drift) == []
        assert "players" in await connection.run_sync(_table_names)


async def test_player_defaults_and_unique_handle_come_from_the_schema(
    game_app: FastAPI, game_client: httpx.AsyncClient
) -> None:
    now = datetime.now(UTC)
    async with game_app.state.engine.begin() as connection:
        await connection.execute(INSERT_PLAYER, {"handle": "alice", "created_at": now})
        row = (
            await connection.execute(
                text("SELECT display_name, region, avatar_colour, mail_opt_in FROM players")
            )
        ).one()
    assert tuple(row) == ("", "eu", "#4b5bdc", False)

    with pytest.raises(IntegrityError):
        async with game_app.state.engine.begin() as connection:
            await connection.execute(INSERT_PLAYER, {"handle": "alice", "created_at": now})


async def test_downgrade_removes_the_players_table(
    game_app: FastAPI, game_client: httpx.AsyncClient, game_settings: GameSettings
) -> None:
    # Alembic's env.py runs its own event loop, so it gets a thread (as at start-up).
    await asyncio.to_thread(downgrade, MIGRATIONS, game_settings.db_url, "base")
    async with game_app.state.engine.connect() as connection:
        assert "players" not in await connection.run_sync(_table_names)
