"""SQLite connections commit durably: each commit survives a power loss, not only a crash."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from VEZEPyCore.db.engine import make_engine


async def test_every_connection_is_in_wal_mode_with_full_synchronous_commits(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/service.db")
    try:
        async with engine.connect() as connection:
            journal = await connection.scalar(text("PRAGMA journal_mode"))
            synchronous = await connection.scalar(text("PRAGMA synchronous"))
            foreign_keys = await connection.scalar(text("PRAGMA foreign_keys"))
    finally:
        await engine.dispose()
    assert str(journal).lower() == "wal"
    assert synchronous == 2  # FULL (NORMAL, 1, loses the last commits on a power loss)
    assert foreign_keys == 1
