"""A queue worker process killed with SIGKILL in the middle of a batch: a second worker finishes
the work and every job is done exactly once in effect (Redis Streams and the database queue).

The doomed process (queue_crash_worker.py) claims a batch of 8: three jobs finish, two apply
their effect and hang before their outcome is recorded, three hang before doing anything. The
test waits until all eight have started, kills the process, and lets a second worker run. The
effect is idempotent (queue_support.py), so the two jobs that run twice add to the total once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyCore.db.engine import make_engine, make_sessionmaker
from VEZEPyCore.queue import Backoff, Job, QueueWorker, StreamDispatch
from VEZEPyCore.tests.queue_support import (
    JOBS,
    add_jobs,
    apply_effect,
    create_schema,
    log_run,
    snapshot,
)

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
BATCH = 8
LEASE_SECONDS = 3.0


@dataclass
class Db:
    url: str
    sessionmaker: async_sessionmaker[AsyncSession]


@pytest.fixture
async def db(database_url: Callable[[str], Any]) -> AsyncIterator[Db]:
    url = await database_url("game")
    engine = make_engine(url)
    await create_schema(engine)
    yield Db(url, make_sessionmaker(engine))
    await engine.dispose()


async def wait_until(probe: Callable[[], Any], what: str, timeout: float = 90.0) -> None:
    async with asyncio.timeout(timeout):
        while not await probe():
            await asyncio.sleep(0.05)


async def run_and_kill(db: Db, *extra: str) -> None:
    """Start the doomed worker, wait until its whole batch has started, SIGKILL it."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "VEZEPyCore.tests.queue_crash_worker",
            db.url,
            "--lease",
            str(LEASE_SECONDS),
            "--batch",
            str(BATCH),
            *extra,
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:

        async def all_started() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the worker exited early ({process.returncode})")
            return len((await snapshot(db.sessionmaker))["runs"]) == BATCH

        await wait_until(all_started, "the whole batch started")
        await wait_until(lambda: _count_done(db, 3), "the three quick jobs recorded")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


async def _count_done(db: Db, count: int) -> bool:
    jobs = (await snapshot(db.sessionmaker))["jobs"]
    done: int = sum(job.status == "done" for job in jobs.values())
    return done >= count


def survivor_handler(db: Db) -> Any:
    async def handler(job: Job) -> None:
        await log_run(db.sessionmaker, job.id, "survivor")
        await apply_effect(db.sessionmaker, job.id)

    return handler


def assert_exactly_once_in_effect(state: dict[str, Any], ids: list[int]) -> None:
    jobs = state["jobs"]
    assert {job_id: jobs[job_id].status for job_id in ids} == dict.fromkeys(ids, "done")
    assert state["effects"] == ids  # every job's effect ...
    assert state["total"] == len(ids)  # ... applied once, though some jobs ran twice
    reruns = sorted(job_id for job_id, runs in state["runs"].items() if runs == 2)
    assert len(reruns) == BATCH - 3  # the five interrupted ones, and no other
    assert all(runs in (1, 2) for runs in state["runs"].values())


async def test_a_killed_stream_consumer_s_entries_are_claimed_and_finished(
    db: Db, redis_url: str
) -> None:
    prefix = f"test:{uuid.uuid4().hex[:10]}"
    dispatch = StreamDispatch.from_url(
        redis_url, queue=JOBS.name, prefix=prefix, claim_idle_seconds=0.5
    )
    ids = await add_jobs(db.sessionmaker, BATCH)
    await dispatch.publish(ids)
    await run_and_kill(db, "--redis", redis_url, "--prefix", prefix)
    assert await dispatch.pending_count() == BATCH  # the dead consumer acknowledged nothing

    survivor = QueueWorker(
        table=JOBS,
        sessionmaker=db.sessionmaker,
        handler=survivor_handler(db),
        backoff=Backoff(initial_seconds=0.1, max_seconds=1.0),
        lease_seconds=LEASE_SECONDS,
        poll_seconds=0.2,
        dispatch=dispatch,
    )

    async def all_done_and_acknowledged() -> bool:
        await survivor.consume_once()  # the stream path only: no database sweep runs here
        return await _count_done(db, BATCH) and await dispatch.pending_count() == 0

    try:
        await wait_until(all_done_and_acknowledged, "the survivor to finish the batch")
        state = await snapshot(db.sessionmaker)
    finally:
        await dispatch.redis.delete(dispatch.stream, dispatch.delayed, dispatch.dead)
        await dispatch.close()
    assert_exactly_once_in_effect(state, ids)
    assert survivor.reclaimed == BATCH - 3  # taken over with XAUTOCLAIM once the leases ran out


async def test_a_killed_database_worker_s_leases_run_out_and_a_second_worker_finishes(
    db: Db,
) -> None:
    ids = await add_jobs(db.sessionmaker, BATCH)
    await run_and_kill(db)

    survivor = QueueWorker(
        table=JOBS,
        sessionmaker=db.sessionmaker,
        handler=survivor_handler(db),
        backoff=Backoff(initial_seconds=0.1, max_seconds=1.0),
        lease_seconds=LEASE_SECONDS,
        poll_seconds=0.2,
    )
    survivor.start()
    try:
        await wait_until(lambda: _count_done(db, BATCH), "the survivor to finish the batch")
        state = await snapshot(db.sessionmaker)
    finally:
        await survivor.stop()
    assert_exactly_once_in_effect(state, ids)
    assert {state["jobs"][job_id].attempts for job_id in ids} <= {1, 2}
