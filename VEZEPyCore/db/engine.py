"""Async engines for SQLite (embedded default) and PostgreSQL (scale-out).

PostgreSQL may restart under a running service (ADR 0018). The pool then heals by itself:
`pool_pre_ping` tests each connection as it is checked out and replaces one the restart killed,
so the first request after the restart already succeeds. While the server is away a connect
fails within `PG_CONNECT_TIMEOUT_SECONDS` as the DBAPI's OperationalError (asyncpg alone would
raise a bare OSError), and `database_unavailable` tells such failures from bad statements, so
the HTTP layer answers 503 rather than 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

#: A connect to PostgreSQL that takes longer than this fails (asyncpg's default is 60 s).
PG_CONNECT_TIMEOUT_SECONDS = 5.0

#: asyncpg's errors that mean "try again later" (the server or the link went away, or the
#: server gave up on a statement that ran too long), not "the statement is bad".
_CONNECTION_LOST = (
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.CannotConnectNowError,  # 57P03: starting up, shutting down, in recovery
    asyncpg.AdminShutdownError,  # 57P01: a fast shutdown ended the session
    asyncpg.CrashShutdownError,  # 57P02: another backend crashed, sessions reset
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,  # "connection is closed" after the server went away
    asyncpg.QueryCanceledError,  # 57014: statement_timeout (SessionLimits), or cancelled
    asyncpg.IdleInTransactionSessionTimeoutError,  # 25P03: the server ended an idle one
)


def database_unavailable(exc: BaseException) -> bool:
    """True when `exc` says the database could not be reached (a retry later may work)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (OSError, TimeoutError, *_CONNECTION_LOST)):
            return True
        current = current.__cause__ or current.__context__
    return False


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


@dataclass(frozen=True)
class SessionLimits:
    """Server-side limits on a PostgreSQL connection's statements and idle transactions
    (seconds; 0 is no limit). SQLite has no server to enforce them."""

    statement_seconds: float = 0.0
    idle_in_transaction_seconds: float = 0.0

    @classmethod
    def of(cls, settings: Any) -> SessionLimits:
        return cls(
            statement_seconds=settings.db_statement_timeout_seconds,
            idle_in_transaction_seconds=settings.db_idle_in_transaction_timeout_seconds,
        )

    def server_settings(self) -> dict[str, str]:
        # Set at connect, as asyncpg's startup parameters: no extra round trip per checkout.
        return {
            "statement_timeout": str(round(self.statement_seconds * 1000)),
            "idle_in_transaction_session_timeout": str(
                round(self.idle_in_transaction_seconds * 1000)
            ),
        }


def make_engine(url: str, *, limits: SessionLimits | None = None, **kwargs: Any) -> AsyncEngine:
    """An engine for `url`; `limits` apply on PostgreSQL (the services pass their settings'
    limits; commands and migrations run without)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 15}, **kwargs)
        event.listen(engine.sync_engine, "connect", apply_sqlite_pragmas)
        return engine
    engine = create_async_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        pool_timeout=10,
        connect_args={
            "timeout": PG_CONNECT_TIMEOUT_SECONDS,
            "server_settings": (limits or SessionLimits()).server_settings(),
        },
        **kwargs,
    )
    event.listen(engine.sync_engine, "do_connect", _connect_or_operational_error)
    return engine


def _connect_or_operational_error(
    dialect: Dialect, _record: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]
) -> Any:
    """Connect; a refused, reset or timed-out connect raises the DBAPI's OperationalError.

    PEP 249 (and psycopg) report an unreachable server that way; asyncpg raises the bare OSError
    or TimeoutError, which SQLAlchemy passes through unwrapped. This way it is a DBAPIError like
    every other database failure, and `database_unavailable` recognises it by its cause.
    """
    try:
        return dialect.connect(*cargs, **cparams)
    except (OSError, TimeoutError) as exc:
        # SQLAlchemy wraps the DBAPI's own error as sqlalchemy.exc.OperationalError.
        raise dialect.loaded_dbapi.OperationalError(f"cannot connect: {exc!r}") from exc


def apply_sqlite_pragmas(dbapi_connection: Any, _record: Any = None) -> None:
    """The settings every connection to a service's SQLite file runs with."""
    # WAL lets readers run beside the one writer; busy_timeout waits instead of failing.
    # busy_timeout comes first, and the journal mode is only switched when it is not WAL yet
    # (migrations set it): switching takes a lock that fails at once, without waiting, while
    # another connection of a starting worker holds one.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA journal_mode")
    if str(cursor.fetchone()[0]).lower() != "wal":
        cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: in WAL mode each commit fsyncs the log, so a commit survives a power loss, not only
    # a process crash (NORMAL). The services answer "stored" (an SMTP 250, a 201) after a
    # commit; Email's group commit pays that fsync once per batch of deliveries.
    cursor.execute("PRAGMA synchronous=FULL")
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
