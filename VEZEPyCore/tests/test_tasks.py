"""`cancel_and_wait` ends a background task even when a cancel is lost on the way."""

from __future__ import annotations

import asyncio
import logging

import pytest

from VEZEPyCore.tasks import cancel_and_wait


def retrying_loop(step: asyncio.Future[None] | None = None) -> tuple[asyncio.Task[None], list[str]]:
    """A loop shaped like the services' sweepers: errors are logged and it goes round again."""
    seen: list[str] = []

    async def run() -> None:
        while True:
            try:
                if step is not None and not step.done():
                    await asyncio.wait_for(step, timeout=30)
                await asyncio.sleep(0.01)
            except Exception as error:
                seen.append(type(error).__name__)

    return asyncio.create_task(run()), seen


async def test_a_cancel_lost_in_wait_for_is_repeated() -> None:
    # The race from CI: the cancel lands in the same loop turn as the awaited call's error.
    # Python 3.11's wait_for then raises the error, not CancelledError, and the loop goes on.
    step: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    task, _seen = retrying_loop(step)
    await asyncio.sleep(0)  # the task is now inside wait_for
    task.cancel()
    step.set_exception(ConnectionResetError("Connection lost"))

    await asyncio.wait_for(cancel_and_wait(task, recancel_seconds=0.05), timeout=10)

    assert task.cancelled()


async def test_a_swallowed_cancel_is_repeated_until_the_task_ends() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                if swallowed == 2:
                    raise
                swallowed += 1

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait(task, recancel_seconds=0.05), timeout=10)
    assert task.cancelled() and swallowed == 2


async def test_a_task_that_ends_at_once_costs_no_wait() -> None:
    task, seen = retrying_loop()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await cancel_and_wait(task, recancel_seconds=30)
    assert task.cancelled() and seen == []
    assert loop.time() - started < 5  # one cancel was enough: no second round of 30 s


async def test_an_error_the_task_ended_with_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fails() -> None:
        try:
            await asyncio.sleep(30)
        finally:
            raise RuntimeError("broken on the way out")

    task = asyncio.create_task(fails(), name="fails-on-stop")
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR, logger="VEZEPyCore.tasks"):
        await cancel_and_wait(task)
    assert "fails-on-stop" in caplog.text and "broken on the way out" in caplog.text


async def test_cancelling_the_caller_cancels_the_task_too() -> None:
    release = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(30)
        finally:
            await release.wait()  # a long clean-up the caller gives up on

    task = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    stopper = asyncio.create_task(cancel_and_wait(task, recancel_seconds=30))
    await asyncio.sleep(0.05)
    assert not task.done()  # inside its clean-up
    stopper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    await asyncio.wait({task}, timeout=5)
    assert task.cancelled() and not release.is_set()


async def test_none_is_nothing_to_stop() -> None:
    await cancel_and_wait(None)
