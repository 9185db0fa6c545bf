"""The leased-queue worker dispatched over Redis Streams: a real Redis and the test database.

Each test has streams of its own (a unique key prefix). The consumer is driven round by round
(`consume_once`), without the database sweep, so what happens is the stream path's doing;
the last test runs the sweep alone to show it finds a job whose stream entry was lost.
"""

from __future__ import annotations

import asyncio
import io
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyCore.db.engine import make_engine, make_sessionmaker
from VEZEPyCore.queue import Backoff, Job, QueueWorker, Retry, StreamDispatch
from VEZEPyCore.queue import cli as queue_cli
from VEZEPyCore.queue.definition import CATALOG, stream_key
from VEZEPyCore.queue.definition import load as load_queue
from VEZEPyCore.testing import free_port
from VEZEPyCore.tests.queue_support import JOBS, add_jobs, apply_effect, create_schema, snapshot

pytestmark = pytest.mark.timeout(120)


@dataclass
class Setup:
    db_url: str
    redis_url: str
    prefix: str
    sessionmaker: async_sessionmaker[AsyncSession]

    def dispatch(self, **options: Any) -> StreamDispatch:
        # Keyed as the services key theirs (and as the dead-letter command finds them).
        return StreamDispatch.from_url(
            self.redis_url,
            queue=stream_key(JOBS.name, self.db_url),
            prefix=self.prefix,
            **options,
        )


@pytest.fixture
async def setup(database_url: Callable[[str], Any], redis_url: str) -> AsyncIterator[Setup]:
    url = await database_url("game")
    engine = make_engine(url)
    await create_schema(engine)
    prefix = f"test:{uuid.uuid4().hex[:10]}"
    yield Setup(url, redis_url, prefix, make_sessionmaker(engine))
    cleanup = StreamDispatch.from_url(redis_url, queue=stream_key(JOBS.name, url), prefix=prefix)
    await cleanup.redis.delete(cleanup.stream, cleanup.delayed, cleanup.dead)
    await cleanup.close()
    await engine.dispose()


def worker(setup: Setup, handler: Any, dispatch: StreamDispatch, **options: Any) -> QueueWorker:
    defaults: dict[str, Any] = {
        "backoff": Backoff(initial_seconds=0.2, max_seconds=2.0),
        "lease_seconds": 30.0,
        "poll_seconds": 0.2,
        "rng": random.Random(5),
    }
    defaults.update(options)
    return QueueWorker(
        table=JOBS, sessionmaker=setup.sessionmaker, handler=handler, dispatch=dispatch, **defaults
    )


async def drive(queue: QueueWorker, done: Callable[[], Awaitable[bool]], what: str) -> None:
    """Run consumer rounds until `done()`, within a bounded time."""
    async with asyncio.timeout(60):
        while not await done():
            await queue.consume_once()
    assert await done(), what


async def test_stream_entries_are_run_once_and_acknowledged(setup: Setup) -> None:
    dispatch = setup.dispatch()
    ran: list[int] = []

    async def handler(job: Job) -> None:
        ran.append(job.id)
        await apply_effect(setup.sessionmaker, job.id)

    queue = worker(setup, handler, dispatch)
    ids = await add_jobs(setup.sessionmaker, 5)
    await queue.notify(ids)
    await queue.notify(ids[:2])  # a duplicate entry: the row says there is nothing left to do

    async def all_done() -> bool:
        jobs = (await snapshot(setup.sessionmaker))["jobs"]
        return all(job.status == "done" for job in jobs.values())

    await drive(queue, all_done, "five jobs done")
    for _ in range(3):
        await queue.consume_once()  # the duplicates are read, found done and acknowledged
    state = await snapshot(setup.sessionmaker)
    assert sorted(ran) == ids and state["total"] == 5
    assert await dispatch.redis.xlen(dispatch.stream) == 7
    assert await dispatch.pending_count() == 0
    await dispatch.close()


async def test_retries_go_through_the_delayed_set_with_backoff(setup: Setup) -> None:
    dispatch = setup.dispatch()
    seen: list[tuple[int, float]] = []
    loop = asyncio.get_running_loop()

    async def flaky(job: Job) -> None:
        seen.append((job.attempts, loop.time()))
        if job.attempts < 3:
            raise Retry(f"busy (attempt {job.attempts})")

    queue = worker(setup, flaky, dispatch, backoff=Backoff(initial_seconds=0.4, max_seconds=5.0))
    [job_id] = await add_jobs(setup.sessionmaker, 1)
    await queue.notify([job_id])

    async def done() -> bool:
        return bool((await snapshot(setup.sessionmaker))["jobs"][job_id].status == "done")

    await drive(queue, done, "the job done on its third attempt")
    assert [attempt for attempt, _ in seen] == [1, 2, 3]
    first_gap, second_gap = seen[1][1] - seen[0][1], seen[2][1] - seen[1][1]
    assert first_gap >= 0.4 * 0.9 and second_gap >= 0.8 * 0.9  # waited its back-off, doubling
    # The first entry and one promoted from the delayed set per retry.
    assert await dispatch.redis.xlen(dispatch.stream) == 3
    assert await dispatch.redis.zcard(dispatch.delayed) == 0
    await dispatch.close()


async def test_dead_letters_reach_the_dead_stream_and_a_replay_runs_them(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    dispatch = setup.dispatch()
    broken = True

    async def handler(job: Job) -> None:
        if broken:
            raise Retry("still broken")
        await apply_effect(setup.sessionmaker, job.id)

    queue = worker(
        setup,
        handler,
        dispatch,
        max_attempts=2,
        backoff=Backoff(initial_seconds=0.05, max_seconds=0.1),
    )
    ids = await add_jobs(setup.sessionmaker, 2)
    await queue.notify(ids)

    async def both_dead() -> bool:
        jobs = (await snapshot(setup.sessionmaker))["jobs"]
        return all(job.status == "failed" for job in jobs.values())

    await drive(queue, both_dead, "two dead letters")
    entries = await dispatch.dead_entries()
    assert sorted(int(fields["id"]) for _, fields in entries) == ids
    assert {fields["error"] for _, fields in entries} == {"still broken"}
    assert {fields["attempts"] for _, fields in entries} == {"2"}

    monkeypatch.setitem(CATALOG, "test.jobs", "VEZEPyCore.tests.queue_support:DEFINITION")
    monkeypatch.setenv("VEZE_TEST_QUEUE_DB", setup.db_url)
    monkeypatch.setenv("VEZE_TEST_QUEUE_REDIS", setup.redis_url)
    monkeypatch.setenv("VEZE_TEST_QUEUE_PREFIX", setup.prefix)
    listed = io.StringIO()
    await queue_cli.list_dead(load_queue("test.jobs"), limit=10, as_json=False, out=listed)
    assert "2 dead letter(s) in test.jobs; 2 entr(y/ies) in the Redis dead-letter stream" in (
        listed.getvalue()
    )
    assert listed.getvalue().count("still broken") == 2

    broken = False
    out = io.StringIO()
    assert await queue_cli.replay_dead(load_queue("test.jobs"), ids=[ids[1]], out=out) == 0
    assert [int(fields["id"]) for _, fields in await dispatch.dead_entries()] == [ids[0]]

    async def replayed_done() -> bool:
        return bool((await snapshot(setup.sessionmaker))["jobs"][ids[1]].status == "done")

    await drive(queue, replayed_done, "the replayed job done")  # dispatched by the replay
    state = await snapshot(setup.sessionmaker)
    assert state["jobs"][ids[0]].status == "failed" and state["total"] == 1
    await dispatch.close()


async def test_the_database_sweep_finds_a_job_whose_stream_entry_was_lost(setup: Setup) -> None:
    dispatch = setup.dispatch()

    async def handler(job: Job) -> None:
        await apply_effect(setup.sessionmaker, job.id)

    queue = worker(setup, handler, dispatch, poll_seconds=0.1)
    ids = await add_jobs(setup.sessionmaker, 3)  # committed, never published (Redis lost it)
    queue.start()
    try:

        async def all_done() -> bool:
            jobs = (await snapshot(setup.sessionmaker))["jobs"]
            return all(job.status == "done" for job in jobs.values())

        async with asyncio.timeout(60):
            while not await all_done():
                await asyncio.sleep(0.05)
        await queue.check_running()
    finally:
        await queue.stop()
        await dispatch.close()
    assert (await snapshot(setup.sessionmaker))["total"] == len(ids)


async def test_with_redis_unreachable_the_sweep_does_the_work(setup: Setup) -> None:
    away = StreamDispatch.from_url(
        f"redis://127.0.0.1:{free_port()}/0", queue=JOBS.name, prefix=setup.prefix
    )

    async def handler(job: Job) -> None:
        await apply_effect(setup.sessionmaker, job.id)

    queue = worker(setup, handler, away, poll_seconds=0.1)
    queue.start()
    try:
        ids = await add_jobs(setup.sessionmaker, 3)
        await queue.notify(ids)  # the XADD fails: logged, never raised to the producer

        async def all_done() -> bool:
            jobs = (await snapshot(setup.sessionmaker))["jobs"]
            return all(job.status == "done" for job in jobs.values())

        async with asyncio.timeout(60):
            while not await all_done():
                await asyncio.sleep(0.05)
        await queue.check_running()  # the stream loop keeps trying, it did not die
    finally:
        await queue.stop()
        await away.close()
    assert (await snapshot(setup.sessionmaker))["total"] == 3
