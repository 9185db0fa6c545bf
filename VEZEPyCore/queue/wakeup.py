"""The loop of a queue worker: one pass, then sleep until woken, the next due time or a poll.

A subclass says how to do one pass (`process_due`, returning how many tasks it claimed) and
when the next task falls due (`next_due`). Enqueuers set `wakeup` after their commit so a local
worker starts at once; workers in other processes find the work on their next poll.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime

from VEZEPyCore.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class WakeableLoop(ABC):
    def __init__(
        self,
        *,
        poll_seconds: float,
        clock: Callable[[], datetime],
        name: str,
        label: str | None = None,
    ) -> None:
        self._poll_seconds = poll_seconds
        self._clock = clock
        #: The asyncio task's name; `label` is how logs and readiness errors call the loop.
        self._name = name
        self._label = label or name
        self.wakeup = asyncio.Event()
        #: Passes over the queue the loop has finished (for tests and debugging).
        self.passes = 0
        self._task: asyncio.Task[None] | None = None

    @abstractmethod
    async def process_due(self) -> int:
        """Claim and work off one batch of due tasks; how many were claimed."""

    @abstractmethod
    async def next_due(self) -> datetime | None:
        """When the earliest waiting task falls due, None if there is none."""

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=self._name)

    async def stop(self) -> None:
        """Cancel the loop; subclasses hand in-flight tasks back on cancellation."""
        task, self._task = self._task, None
        if task is None:
            return
        await cancel_and_wait(task)

    async def check_running(self) -> None:
        """Readiness: the loop is alive (it never ends on its own)."""
        if self._task is None or self._task.done():
            raise RuntimeError(f"the {self._label} is not running")

    async def run(self) -> None:
        while True:
            self.wakeup.clear()  # before looking, so an enqueue during the pass is not lost
            try:
                claimed = await self.process_due()
            except Exception:  # the database is down, say: keep the loop alive, try again
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # a driver turned our cancellation into an error: stop all the same
                log.exception("%s pass failed", self._label)
                claimed = 0
            self.passes += 1
            if claimed:
                continue  # there may be more due work than one batch
            with suppress(TimeoutError):
                async with asyncio.timeout(await self.idle_seconds()):
                    await self.wakeup.wait()

    async def idle_seconds(self) -> float:
        """How long to sleep: until the next task falls due, at most one poll interval."""
        try:
            next_due = await self.next_due()
        except Exception:
            log.exception("%s could not read its queue", self._label)
            return self._poll_seconds
        if next_due is None:
            return self._poll_seconds
        if next_due.tzinfo is None:  # an aggregate skips the column type's UTC fix-up
            next_due = next_due.replace(tzinfo=UTC)
        wait = (next_due - self._clock()).total_seconds()
        return min(max(wait, 0.0), self._poll_seconds)
