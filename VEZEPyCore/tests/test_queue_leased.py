"""The generic leased-queue worker on a real database: back-off, dead letters and their replay.

The table is a test queue (queue_support.py) on the test database (SQLite by default,
PostgreSQL when GAME_DB_URL points there); the clock is driven by the test.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyCore.db.engine import make_engine, make_sessionmaker
from VEZEPyCore.queue import Backoff, Failure, GiveUp, Job, QueueWorker, Retry
from VEZEPyCore.queue import cli as queue_cli
from VEZEPyCore.queue.definition import CATALOG
from VEZEPyCore.queue.definition import load as load_queue
from VEZEPyCore.tests.queue_support import JOBS, add_jobs, create_schema, snapshot


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC) + timedelta(seconds=1)

    def __call__(self) -> datetime:
        return self.now


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


def worker(db: Db, handler: Any, clock: Clock, **options: Any) -> QueueWorker:
    defaults: dict[str, Any] = {
        "backoff": Backoff(initial_seconds=2.0, max_seconds=60.0),
        "lease_seconds": 30.0,
        "poll_seconds": 1.0,
        "rng": random.Random(3),
    }
    defaults.update(options)
    return QueueWorker(
        table=JOBS, sessionmaker=db.sessionmaker, handler=handler, clock=clock, **defaults
    )


async def test_failures_back_off_exponentially_then_go_to_the_dead_letters(db: Db) -> None:
    clock = Clock()
    dead: list[tuple[int, Failure]] = []

    async def always_down(job: Job) -> None:
        raise Retry(f"down (attempt {job.attempts})")

    async def on_dead(job: Job, failure: Failure) -> None:
        dead.append((job.id, failure))

    queue = worker(db, always_down, clock, max_attempts=4, on_dead=on_dead)
    [job_id] = await add_jobs(db.sessionmaker, 1)
    gaps: list[float] = []
    for attempt in range(1, 4):
        assert await queue.process_due() == 1
        row = (await snapshot(db.sessionmaker))["jobs"][job_id]
        assert (row.status, row.attempts, row.lease_token) == ("pending", attempt, None)
        assert row.last_error == f"down (attempt {attempt})"
        gaps.append((row.next_attempt_at - clock.now).total_seconds())
        assert await queue.process_due() == 0  # not due before its back-off has passed
        clock.now = row.next_attempt_at
    assert await queue.process_due() == 1  # the fourth and last attempt
    row = (await snapshot(db.sessionmaker))["jobs"][job_id]

    for attempt, gap in enumerate(gaps, start=1):
        assert 0.9 * 2.0 * 2 ** (attempt - 1) <= gap <= 1.1 * 2.0 * 2 ** (attempt - 1)
    assert (row.status, row.attempts, row.last_error) == ("failed", 4, "down (attempt 4)")
    assert [(dead_id, failure.permanent, failure.expired) for dead_id, failure in dead] == [
        (job_id, False, False)
    ]
    assert await queue.process_due() == 0  # a dead letter is never claimed again


async def test_give_up_is_dead_at_once_and_a_replay_runs_it_again(
    db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    refusing = True
    ran: list[int] = []

    async def handler(job: Job) -> None:
        ran.append(job.id)
        if refusing:
            raise GiveUp("the target refused it for good")

    queue = worker(db, handler, clock, max_attempts=10)
    ids = await add_jobs(db.sessionmaker, 3)
    assert await queue.process_due() == 3
    state = await snapshot(db.sessionmaker)
    assert {job.status for job in state["jobs"].values()} == {"failed"}
    assert all(job.attempts == 1 for job in state["jobs"].values())

    # The operator's command, on this test queue (the catalog names the real ones).
    monkeypatch.setitem(CATALOG, "test.jobs", "VEZEPyCore.tests.queue_support:DEFINITION")
    monkeypatch.setenv("VEZE_TEST_QUEUE_DB", db.url)
    monkeypatch.delenv("VEZE_TEST_QUEUE_REDIS", raising=False)
    listed = io.StringIO()
    assert (
        await queue_cli.list_dead(load_queue("test.jobs"), limit=10, as_json=True, out=listed) == 0
    )
    entries = [json.loads(line) for line in listed.getvalue().splitlines()]
    assert sorted(entry["id"] for entry in entries) == ids
    assert {entry["last_error"] for entry in entries} == {"the target refused it for good"}

    refusing = False
    replayed = io.StringIO()
    code = await queue_cli.replay_dead(load_queue("test.jobs"), ids=[ids[0], 999_999], out=replayed)
    assert code == 1  # 999999 is no dead letter: said, and left alone
    assert f"[{ids[0]}]" in replayed.getvalue() and "999999" in replayed.getvalue()
    row = (await snapshot(db.sessionmaker))["jobs"][ids[0]]
    assert (row.status, row.attempts, row.lease_token) == ("pending", 0, None)
    clock.now = datetime.now(UTC) + timedelta(seconds=1)
    assert await queue.process_due() == 1
    state = await snapshot(db.sessionmaker)
    assert [state["jobs"][job_id].status for job_id in ids] == ["done", "failed", "failed"]
    assert state["jobs"][ids[0]].last_error is None
    assert ran.count(ids[0]) == 2

    all_of_them = io.StringIO()
    await queue_cli.replay_dead(load_queue("test.jobs"), ids=None, out=all_of_them)
    assert await queue.process_due() == 2
    state = await snapshot(db.sessionmaker)
    assert {job.status for job in state["jobs"].values()} == {"done"}


async def test_an_expired_lease_is_claimed_again_and_the_late_outcome_is_ignored(db: Db) -> None:
    clock = Clock()
    outcomes: list[str] = []

    async def fine(_job: Job) -> None:
        return None

    dead_worker = worker(db, fine, clock, lease_seconds=10.0)
    survivor = worker(
        db, fine, clock, lease_seconds=10.0, on_outcome=lambda _job, o: outcomes.append(o)
    )
    [job_id] = await add_jobs(db.sessionmaker, 1)
    [lost] = await dead_worker.claim_due()  # ... and its process dies
    clock.now += timedelta(seconds=9)
    assert await survivor.process_due() == 0  # still leased
    clock.now += timedelta(seconds=2)
    assert await survivor.process_due() == 1
    await dead_worker.process(lost)  # the dead worker's late outcome counts for nothing
    row = (await snapshot(db.sessionmaker))["jobs"][job_id]
    assert (row.status, row.attempts) == ("done", 2)
    assert outcomes == ["done"]


def test_the_command_line_names_its_queues() -> None:
    out = io.StringIO()
    assert queue_cli.main(["queues"], out=out) == 0
    assert out.getvalue().split() == ["email.outbound", "game.summary-mail", "portal.provisioning"]
    for name in CATALOG:
        assert load_queue(name).name == name  # every import string resolves
