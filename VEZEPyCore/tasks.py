"""Stopping a background task for certain.

A plain `task.cancel(); await task` can wait forever on Python 3.11: `asyncio.wait_for`, which
redis-py awaits its socket writes with, loses a cancel that lands just as the awaited write
fails, and hands the task the write's error instead. A loop that logs errors and tries again
then runs on, and whoever awaits it hangs. `cancel_and_wait` cancels again until the task ends.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)
#: How long a cancelled task may take to end before it is cancelled again. Long enough for a
#: `finally` that gives back leases or closes a connection; short enough that a lost cancel
#: costs a stop one second, not the whole shutdown.
RECANCEL_SECONDS = 1.0


async def cancel_and_wait(
    task: asyncio.Task[Any] | None, *, recancel_seconds: float = RECANCEL_SECONDS
) -> None:
    """Cancel `task` and return once it has ended. An error it ended with is logged, not
    raised: a stop should not fail because the task it stops had failed."""
    if task is None:
        return
    try:
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=recancel_seconds)
    except asyncio.CancelledError:
        task.cancel()  # the caller is being cancelled: the task still goes too
        raise
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("background task %s ended with an error", task.get_name(), exc_info=error)
