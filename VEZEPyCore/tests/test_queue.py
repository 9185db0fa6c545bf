"""The shared queue building blocks: back-off and the wakeable worker loop."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest

from VEZEPyCore.queue import Backoff, WakeableLoop


def test_backoff_doubles_with_jitter_and_caps() -> None:
    backoff = Backoff(initial_seconds=1.0, max_seconds=10.0)
    rng = random.Random(7)
    delays = [backoff.delay(attempt, rng) for attempt in (1, 2, 3, 4, 5, 500)]
    for delay, nominal in zip(delays, (1, 2, 4, 8), strict=False):
        assert nominal * 0.9 <= delay <= nominal * 1.1
    assert delays[4] == 10.0 and delays[5] == 10.0


class Loop(WakeableLoop):
    def __init__(self, due: datetime | None) -> None:
        super().__init__(poll_seconds=60.0, clock=lambda: NOW, name="test-loop", label="test loop")
        self.due = due
        self.work = 0
        self.done = asyncio.Event()

    async def process_due(self) -> int:
        claimed, self.work = self.work, 0
        if self.passes >= 1:
            self.done.set()
        return claimed

    async def next_due(self) -> datetime | None:
        return self.due


NOW = datetime(2026, 11, 27, tzinfo=UTC)


async def test_idle_time_is_until_the_next_due_task_at_most_one_poll() -> None:
    assert await Loop(None).idle_seconds() == 60.0
    assert await Loop(NOW + timedelta(seconds=5)).idle_seconds() == 5.0
    assert await Loop(NOW - timedelta(seconds=5)).idle_seconds() == 0.0
    naive = (NOW + timedelta(seconds=2)).replace(tzinfo=None)
    assert await Loop(naive).idle_seconds() == 2.0


async def test_wakeup_starts_a_pass_and_stop_ends_the_loop() -> None:
    loop = Loop(None)
    with pytest.raises(RuntimeError, match="test loop is not running"):
        await loop.check_running()
    loop.start()
    await loop.check_running()
    async with asyncio.timeout(5):
        while loop.passes < 1:
            await asyncio.sleep(0)
        loop.wakeup.set()  # without it the loop would sleep a whole poll interval
        await loop.done.wait()
    await loop.stop()
    with pytest.raises(RuntimeError):
        await loop.check_running()
