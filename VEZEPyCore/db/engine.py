"""Async engines for SQLite (embedded default) and PostgreSQL (scale-out)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 15}, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=10, pool_timeout=10, **kwargs
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; busy_timeout waits instead of failing.
    # busy_timeout comes first, and the journal mode is only switched when it is not WAL yet
    # (migrations set it): switching takes a lock that fails at once, without waiting, while
    # another connection of a starting worker holds one.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA journal_mode")
    if str(cursor.fetchone()[0]).lower() != "wal":
        cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def begin_as_writer(session: AsyncSession) -> None:
    """Make the session's transaction a writer from its first statement, on SQLite.

    In WAL mode a transaction that reads first and writes later fails at once with
    SQLITE_BUSY_SNAPSHOT when another writer committed in between; busy_timeout only helps a
    transaction that asks for the write lock first. A write that changes nothing takes that
    lock (every service database has Alembic's version table). PostgreSQL needs nothing here.
    Call it first thing in a transaction that will read and then write.
    """
    connection = await session.connection()
    if connection.dialect.name == "sqlite":
        await session.execute(
            text("UPDATE alembic_version SET version_num = version_num WHERE 1 = 0")
        )
