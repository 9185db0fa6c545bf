"""Delivers what the MX accepted, behind the listener (ADR 0023).

Each pass leases a batch of intake rows (db/intake.py), delivers them concurrently
(delivery.py) and so files them through the group committer, which deletes each row in the
transaction that files it. Every listener process runs one deliverer; any of them may
deliver any row, and a row whose deliverer died is leased again once its lease has run out.

Accept comes first. While this process's listener is taking mail, delivery waits, for at
most `intake_max_delay_seconds` from the moment there was something to deliver; after that
it runs however busy the listener is, so delivery is late by a bounded time, never starved.
A burst is taken at the listener's pace and filed right after it, the way an MTA accepts
into its queue and delivers from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyCore.tasks import cancel_and_wait
from VEZEPyEmail.db import intake as intake_db
from VEZEPyEmail.db.intake import ClaimedMessage
from VEZEPyEmail.services.delivery.group_commit import GroupCommitter
from VEZEPyEmail.services.delivery.writer_turn import WriterTurn, lock_path_for
from VEZEPyEmail.services.intake.delivery import deliver_accepted
from VEZEPyEmail.services.intake.journal import IntakeJournal

log = logging.getLogger(__name__)

#: Rows leased per pass; they are delivered concurrently and filed in a few group commits.
BATCH = 64
#: The listener counts as saturated with at least BUSY_SESSIONS sessions open and a message
#: accepted within the last IDLE_GAP seconds.
BUSY_SESSIONS = 4
IDLE_GAP = 0.1
#: Seconds between looks for rows nobody woke this deliverer for (other processes' leftovers,
#: expired leases), and between counts of the backlog.
SWEEP_SECONDS = 5.0
COUNT_SECONDS = 1.0


class IntakeDeliverer:
    def __init__(
        self,
        state: Any,
        *,
        journal: IntakeJournal,
        committer: GroupCommitter,
        max_delay: float,
        lease_seconds: float,
        max_attempts: int,
        open_sessions: Callable[[], int] = lambda: 0,
    ) -> None:
        self.state = state
        self.open_sessions = open_sessions
        self.journal = journal
        self.committer = committer
        self.max_delay = max_delay
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[int] = set()
        self._counted_at = 0.0
        self._turn = WriterTurn(lock_path_for(str(getattr(state.settings, "db_url", ""))))
        #: Messages delivered, and deliveries that failed and wait for another attempt.
        self.delivered = 0
        self.failed = 0
        journal.on_commit(self.wake)

    @property
    def in_flight(self) -> int:
        """Messages being delivered now (their after-commit work included)."""
        return len(self._in_flight)

    def wake(self) -> None:
        """Look for deliverable rows now (new ones committed, or leases given back)."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._wake.set()  # what an earlier run left is delivered at once
            self._task = asyncio.create_task(self._run(), name="smtp-intake-deliverer")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        if self._in_flight:
            # Leases given back, so a deliverer still running takes them now, not later.
            with contextlib.suppress(Exception):
                await self._write(
                    lambda session: intake_db.release(session, sorted(self._in_flight))
                )
        self._turn.close()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), SWEEP_SECONDS)
            self._wake.clear()
            try:
                await self._drain()
            except Exception:
                log.exception("intake delivery pass failed; trying again shortly")
                await asyncio.sleep(1.0)

    async def _drain(self) -> None:
        """Deliver until nothing deliverable is left."""
        since = time.monotonic()
        while True:
            await self._give_way(since)
            claimed = await self._write(
                lambda session: intake_db.claim(
                    session,
                    limit=BATCH,
                    lease_seconds=self.lease_seconds,
                    max_attempts=self.max_attempts,
                )
            )
            if not claimed:
                await self._count(force=True)
                return
            ids = [message.id for message in claimed]
            self._in_flight.update(ids)
            try:
                await self._deliver(claimed)
            except asyncio.CancelledError:
                raise  # still in flight: stop() gives their leases back
            except BaseException:
                self._in_flight.difference_update(ids)
                raise
            self._in_flight.difference_update(ids)
            await self._count()

    def _listener_saturated(self) -> bool:
        return self.open_sessions() >= BUSY_SESSIONS and self.journal.busy(IDLE_GAP)

    async def _give_way(self, since: float) -> None:
        while self._listener_saturated() and time.monotonic() - since < self.max_delay:
            await self._count()
            await asyncio.sleep(IDLE_GAP)

    async def _deliver(self, claimed: list[ClaimedMessage]) -> None:
        outcomes = await deliver_accepted(self.state, self.committer, claimed)
        unfiled = []
        for message, outcome in zip(claimed, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                self.failed += 1
                # The row stays; it is leased again when its lease runs out.
                last = message.attempts >= self.max_attempts
                log.log(
                    logging.ERROR if last else logging.WARNING,
                    "delivering intake %s failed (attempt %d of %d)",
                    message.id,
                    message.attempts,
                    self.max_attempts,
                    exc_info=outcome,
                )
                continue
            self.delivered += 1
            if not outcome:  # nobody left to file it for (a mailbox gone, all SRS bounces)
                unfiled.append(message.id)
        if unfiled:
            await self._write(lambda session: intake_db.finish(session, unfiled))

    async def _count(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._counted_at < COUNT_SECONDS:
            return
        self._counted_at = now
        sessionmaker: async_sessionmaker[AsyncSession] = self.state.sessionmaker
        async with sessionmaker() as session:
            backlog = await intake_db.backlog(session, max_attempts=self.max_attempts)
        self.journal.backlog = backlog.waiting

    async def _write(self, work: Any) -> Any:
        sessionmaker: async_sessionmaker[AsyncSession] = self.state.sessionmaker
        async with self._turn(), sessionmaker() as session:
            result = await work(session)
            await session.commit()
        return result
