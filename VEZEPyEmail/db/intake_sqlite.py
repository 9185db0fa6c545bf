"""Recording accepted messages on SQLite in one thread hop per batch (services/intake/journal).

Through SQLAlchemy's async SQLite driver a batch costs a dozen hops between the event loop and
aiosqlite's thread (take the writer turn, begin, insert, commit, close), and while the SMTP
sessions keep the loop busy each hop waits for the loop to come round: measured with two
listener processes, the listeners sat idle two thirds of the time, waiting on their own
commits. Here one thread with its own stdlib connection takes the writer turn, inserts the
batch and commits, and the loop waits once.

The statement is SQLAlchemy Core built from the model, and the columns' own bind processors
encode the values, so a row written here reads back exactly like one written through the ORM.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import make_url

from VEZEPyCore.db.engine import apply_sqlite_pragmas
from VEZEPyEmail.db.intake import AcceptedMessage
from VEZEPyEmail.db.models import IntakeMessage

_DIALECT = sqlite.dialect()
_COLUMNS = ("raw", "envelope_from", "recipients", "peer_ip", "helo", "received", "accepted_at")


def _processors() -> list[Callable[[Any], Any] | None]:
    table = IntakeMessage.__table__
    return [table.c[name].type.dialect_impl(_DIALECT).bind_processor(_DIALECT) for name in _COLUMNS]


class SqliteIntakeWriter:
    """Inserts and commits batches of accepted messages on one dedicated thread."""

    def __init__(self, database: Path, lock_path: Path | None) -> None:
        self._database = database
        self._lock_path = lock_path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smtp-intake")
        self._connection: sqlite3.Connection | None = None
        self._lock: int | None = None
        compiled = insert(IntakeMessage).compile(
            dialect=_DIALECT, column_keys=[*_COLUMNS, "leased_until", "attempts"]
        )
        self._sql = compiled.string
        self._order = tuple(compiled.positiontup or ())
        self._processors = _processors()

    @classmethod
    def for_url(cls, url: str, lock_path: Path | None) -> SqliteIntakeWriter | None:
        """A writer for a file-backed SQLite URL; None for other databases."""
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
            return None
        return cls(Path(parsed.database), lock_path)

    async def record(self, messages: Sequence[AcceptedMessage]) -> None:
        """Insert and commit `messages`; returns once the commit is durable."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._record, messages)

    def _rows(self, messages: Sequence[AcceptedMessage]) -> list[list[Any]]:
        rows = []
        for message in messages:
            values = [
                message.raw,
                message.envelope_from,
                list(message.recipients),
                message.peer_ip,
                message.helo,
                message.received,
                message.accepted_at,
            ]
            for index, processor in enumerate(self._processors):
                if processor is not None:
                    values[index] = processor(values[index])
            named = dict(zip(_COLUMNS, values, strict=True))
            named.update(leased_until=None, attempts=0)
            rows.append([named[name] for name in self._order])
        return rows

    def _record(self, messages: Sequence[AcceptedMessage]) -> None:
        connection = self._connect()
        rows = self._rows(messages)
        if self._lock is not None:  # the writer turn of every committer (writer_turn.py)
            fcntl.flock(self._lock, fcntl.LOCK_EX)
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.executemany(self._sql, rows)
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        finally:
            if self._lock is not None:
                fcntl.flock(self._lock, fcntl.LOCK_UN)

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            connection = sqlite3.connect(self._database, isolation_level=None)
            apply_sqlite_pragmas(connection)
            self._connection = connection
            if self._lock_path is not None:
                self._lock = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._connection

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
        lock, self._lock = self._lock, None
        if lock is not None:
            os.close(lock)

    def close(self) -> None:
        """Close the connection on its own thread, after any batch still being written."""
        self._executor.submit(self._close).result()
        self._executor.shutdown(wait=True)
