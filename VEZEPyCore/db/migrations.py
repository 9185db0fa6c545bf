"""Alembic, driven from code: `upgrade_to_head` at start-up, `run_env` inside each env.py.

Migrations are the only source of the schema. Several workers may start at once, so the
upgrade holds a lock: an advisory lock on PostgreSQL, an exclusive `flock` on a file beside the
database on SQLite (SQLite serialises single statements, but two workers would each see the
schema missing and both run the same `CREATE TABLE`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import sqlite3
import zlib
from collections.abc import Iterator
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine


def alembic_config(script_location: Path, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def upgrade_to_head(script_location: Path, url: str) -> None:
    # Alembic's env.py runs its own event loop; give it a thread of its own.
    await asyncio.to_thread(_upgrade_locked, script_location, url)


def _upgrade_locked(script_location: Path, url: str) -> None:
    with _sqlite_migration_lock(url):
        _use_wal_journal(url)
        # "heads": capabilities developed side by side may add migrations on separate branches.
        command.upgrade(alembic_config(script_location, url), "heads")


@contextlib.contextmanager
def _sqlite_migration_lock(url: str) -> Iterator[None]:
    """One upgrade at a time per SQLite file, across processes (workers of one service)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        yield
        return
    lock_path = Path(parsed.database + ".migrate-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, even on a crash
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _use_wal_journal(url: str) -> None:
    """Put a SQLite database in WAL mode once, at start-up, before connections pile up."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(parsed.database, timeout=15)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()


def downgrade(script_location: Path, url: str, revision: str) -> None:
    command.downgrade(alembic_config(script_location, url), revision)


def run_env(target_metadata: MetaData) -> None:
    """The body of every service's `env.py`."""
    if context.is_offline_mode():
        context.configure(
            url=_database_url(),
            target_metadata=target_metadata,
            literal_binds=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_online(target_metadata))


def _database_url() -> str:
    # `alembic -x url=...` on the command line beats the ini file's URL.
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("no database URL: pass -x url=... or set sqlalchemy.url")
    return url


async def _run_online(target_metadata: MetaData) -> None:
    url = _database_url()
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_migrate, target_metadata)
    finally:
        await engine.dispose()


def _migrate(connection: Connection, target_metadata: MetaData) -> None:
    lock_id = None
    if connection.dialect.name == "postgresql":
        script = str(context.config.get_main_option("script_location"))
        lock_id = zlib.crc32(script.encode())
        connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": lock_id})
        connection.commit()
    try:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if lock_id is not None:
            connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": lock_id})
            connection.commit()
