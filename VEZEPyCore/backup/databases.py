"""Dumping and loading one database: SQLite through its online backup API, PostgreSQL through
pg_dump / pg_restore (custom format).

SQLite's backup API copies a consistent snapshot while the service keeps running (WAL readers
and writers are not blocked). pg_dump reads one transaction snapshot, also online. Loading
needs the service stopped: it replaces the whole database.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL, make_url


class DatabaseError(RuntimeError):
    """A dump or load that cannot be done (missing tool, non-empty target, failed command)."""


def kind_of(url: str) -> str:
    backend = make_url(url).get_backend_name()
    if backend not in {"sqlite", "postgresql"}:
        raise DatabaseError(f"cannot back up a {backend} database")
    return backend


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise DatabaseError(f"{url}: not a SQLite file")
    return Path(database)


# -- SQLite ---------------------------------------------------------------------------------


def dump_sqlite(url: str, destination: Path) -> None:
    source_path = sqlite_path(url)
    if not source_path.is_file():
        raise DatabaseError(f"{source_path} does not exist")
    # Read-only URI: a backup must never create or change the live database.
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
    target = sqlite3.connect(destination)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def sqlite_is_empty(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return True
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        count = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    finally:
        connection.close()
    return int(count) == 0


def load_sqlite(url: str, dump: Path, *, force: bool) -> None:
    target = sqlite_path(url)
    if not force and not sqlite_is_empty(target):
        raise DatabaseError(f"{target} is not empty (restore with --force to replace it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.restoring")
    shutil.copyfile(dump, staging)
    with staging.open("rb") as handle:
        os.fsync(handle.fileno())
    # The old WAL and shared-memory files belong to the replaced database: stale frames in them
    # would be replayed onto the restored one.
    for suffix in ("-wal", "-shm", "-journal"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    staging.replace(target)


# -- PostgreSQL -----------------------------------------------------------------------------


def _libpq(url: URL) -> tuple[list[str], dict[str, str]]:
    """Connection options for pg_dump/pg_restore; the password goes in the environment, never
    on a command line other users can read in `ps`."""
    args = ["--dbname", str(url.database or "")]
    if url.host:
        args += ["--host", url.host]
    if url.port:
        args += ["--port", str(url.port)]
    if url.username:
        args += ["--username", url.username]
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    ssl = url.query.get("sslmode") or url.query.get("ssl")
    if isinstance(ssl, str):
        env["PGSSLMODE"] = ssl
    return args, env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise DatabaseError(f"{name} is missing: install the PostgreSQL client tools")
    return path


def _run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603 - fixed tool, arguments from the configured URL
    if result.returncode != 0:
        raise DatabaseError(f"{Path(command[0]).name} failed: {result.stderr.strip()[-2000:]}")


def dump_postgres(url: str, destination: Path) -> None:
    args, env = _libpq(make_url(url))
    _run(
        [_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(destination), *args], env
    )


def _asyncpg_dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def _prepare_postgres(url: URL, *, force: bool) -> None:
    """Create the database if it is missing; refuse (or, forced, clear) one that holds tables."""
    try:
        connection = await asyncpg.connect(_asyncpg_dsn(url))
    except asyncpg.InvalidCatalogNameError:
        admin = await asyncpg.connect(_asyncpg_dsn(url.set(database="postgres")))
        try:
            await admin.execute(f'CREATE DATABASE "{url.database}"')
        finally:
            await admin.close()
        return
    try:
        tables = await connection.fetchval(
            "SELECT count(*) FROM pg_catalog.pg_class c "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')"
        )
        if tables and not force:
            raise DatabaseError(
                f"database {url.database} is not empty (restore with --force to replace it)"
            )
        if tables:
            await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await connection.close()


def load_postgres(url: str, dump: Path, *, force: bool) -> None:
    parsed = make_url(url)
    asyncio.run(_prepare_postgres(parsed, force=force))
    args, env = _libpq(parsed)
    _run(
        [
            _tool("pg_restore"),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            *args,
            str(dump),
        ],
        env,
    )


def dump_database(url: str, destination: Path) -> None:
    if kind_of(url) == "sqlite":
        dump_sqlite(url, destination)
    else:
        dump_postgres(url, destination)


def load_database(url: str, dump: Path, *, force: bool) -> None:
    if kind_of(url) == "sqlite":
        load_sqlite(url, dump, force=force)
    else:
        load_postgres(url, dump, force=force)
