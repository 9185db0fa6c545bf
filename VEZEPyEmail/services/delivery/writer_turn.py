"""Turns at the SQLite write lock for the group committers of several listener processes.

With `EMAIL_SMTP_PROCESSES=N` every listener process has its own group committer, and on
SQLite they all want the one database-wide write lock. A committer that finds it taken
waits in SQLite's busy handler, which polls with sleeps growing to 100 ms: measured on two
processes, batches waited 79 ms on average for locks held a fraction of that. An exclusive
`flock` on a file beside the database queues the committers instead; the kernel wakes the
next one the moment the lock is released, and frees it if its holder dies. PostgreSQL has
no such lock, so there the turn is a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy.engine import make_url


def lock_path_for(db_url: str) -> Path | None:
    """The lock file of an SQLite database file; None for other databases and :memory:."""
    url = make_url(db_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(f"{url.database}.group-commit.lock")


class WriterTurn:
    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._descriptor: int | None = None

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[None]:
        if self._path is None:
            yield
            return
        if self._descriptor is None:
            self._descriptor = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        descriptor = self._descriptor
        # flock blocks, so it waits in a thread. If this task is cancelled meanwhile, the
        # thread still gets the lock later: give it back then, or every process stalls.
        acquiring = asyncio.ensure_future(asyncio.to_thread(fcntl.flock, descriptor, fcntl.LOCK_EX))
        try:
            await asyncio.shield(acquiring)
        except asyncio.CancelledError:
            acquiring.add_done_callback(lambda done: _release_if_acquired(done, descriptor))
            raise
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)

    def close(self) -> None:
        """Give the file back (and with it a lock still held); the next turn reopens it."""
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is not None:
            os.close(descriptor)  # releases a lock still held


def _release_if_acquired(acquiring: asyncio.Future[None], descriptor: int) -> None:
    if not acquiring.cancelled() and acquiring.exception() is None:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
