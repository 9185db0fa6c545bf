"""The accept side of the MX: every accepted message is a committed row before its 250.

Sessions that finish DATA together share one transaction (one fsync on SQLite's WAL or
PostgreSQL's), as a group commit: the journal's task inserts every waiting message with one
multi-row statement and commits, and each session replies once its row is committed
(RFC 5321 section 6.1: the 250 is a promise not to lose the message). What the message
means for its recipients (checks, Sieve, filing) is the deliverer's work, done afterwards,
the way an MTA queues first and delivers from its queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyCore.tasks import cancel_and_wait
from VEZEPyEmail.db import intake as intake_db
from VEZEPyEmail.db.intake import AcceptedMessage
from VEZEPyEmail.db.intake_sqlite import SqliteIntakeWriter
from VEZEPyEmail.services.delivery.writer_turn import WriterTurn, lock_path_for

log = logging.getLogger(__name__)

#: Messages recorded in one transaction at most, and their bytes at most (memory, lock time).
MAX_BATCH = 128
MAX_BATCH_BYTES = 32 * 1024 * 1024


class IntakeFull(RuntimeError):
    """More accepted mail waits for delivery than `intake_max_backlog` allows (SMTP 452)."""


@dataclass
class _Waiting:
    message: AcceptedMessage
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class IntakeJournal:
    """`accept` returns once the message is committed; one task commits the batches."""

    def __init__(self, state: Any, *, max_backlog: int) -> None:
        self.state = state
        self.max_backlog = max_backlog
        #: Rows waiting for delivery, as the deliverer last counted them.
        self.backlog = 0
        #: time.monotonic() of the last accepted message: the deliverer gives way while recent.
        self.last_accept = 0.0
        self._waiting: list[_Waiting] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        db_url = str(getattr(state.settings, "db_url", ""))
        self._turn = WriterTurn(lock_path_for(db_url))
        # SQLite: one thread hop per batch (db/intake_sqlite.py); others through the ORM.
        self._sqlite = SqliteIntakeWriter.for_url(db_url, lock_path_for(db_url))
        self._listeners: list[Any] = []

    def on_commit(self, callback: Any) -> None:
        """Call `callback()` after each committed batch (the deliverer's wake-up)."""
        self._listeners.append(callback)

    def busy(self, within: float) -> bool:
        return time.monotonic() - self.last_accept < within

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="smtp-intake-journal")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        self._turn.close()
        if self._sqlite is not None:
            await asyncio.to_thread(self._sqlite.close)
        for waiting in self._waiting:  # never left hanging: they get a 4xx
            if not waiting.done.done():
                waiting.done.set_exception(RuntimeError("intake stopped"))
        self._waiting.clear()

    async def accept(self, message: AcceptedMessage) -> None:
        """Record `message` durably; raises IntakeFull or the commit's error instead."""
        if self._task is None:
            raise RuntimeError("the intake journal is not running")
        if self.backlog >= self.max_backlog:
            raise IntakeFull(f"{self.backlog} accepted messages wait for delivery")
        self.last_accept = time.monotonic()
        waiting = _Waiting(message)
        self._waiting.append(waiting)
        self._wake.set()
        await waiting.done

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting:
                batch = self._take_batch()
                await self._commit(batch)

    def _take_batch(self) -> list[_Waiting]:
        size = 0
        count = 0
        for waiting in self._waiting[:MAX_BATCH]:
            if count and size + len(waiting.message.raw) > MAX_BATCH_BYTES:
                break
            size += len(waiting.message.raw)
            count += 1
        batch = self._waiting[:count]
        del self._waiting[:count]
        return batch

    async def _commit(self, batch: list[_Waiting]) -> None:
        messages = [waiting.message for waiting in batch]
        try:
            await self._record(messages)
        except Exception as exc:
            log.exception("recording %d accepted messages failed", len(batch))
            for waiting in batch:
                if not waiting.done.done():
                    waiting.done.set_exception(exc)
            return
        except BaseException:
            # Stopped mid-batch: its sessions get a 4xx. On SQLite the writer thread may still
            # finish that commit, so a sender's retry can bring a second copy (filed once when
            # it carries a Message-ID); never a 250 without a committed row.
            for waiting in batch:
                if not waiting.done.done():
                    waiting.done.set_exception(RuntimeError("intake stopped"))
            raise
        self.backlog += len(batch)
        for waiting in batch:
            if not waiting.done.done():  # its session may have gone (the row stays stored)
                waiting.done.set_result(None)
        for callback in self._listeners:
            callback()

    async def _record(self, messages: list[AcceptedMessage]) -> None:
        if self._sqlite is not None:
            await self._sqlite.record(messages)
            return
        sessionmaker: async_sessionmaker[AsyncSession] = self.state.sessionmaker
        async with self._turn(), sessionmaker() as session:
            await intake_db.record(session, messages)
            await session.commit()


def journal_of(state: Any) -> IntakeJournal | None:
    journal = getattr(state, "smtp_intake", None)
    return journal if isinstance(journal, IntakeJournal) else None
