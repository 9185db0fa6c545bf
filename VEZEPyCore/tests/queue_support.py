"""A queue table of test jobs with an observable, idempotent effect, for the queue tests.

The effect of job N is "add 1 to the total, once": one transaction inserts the job's effect
row (its primary key is the job id) and, only if that insert happened, increments the total.
A consumer that runs a job twice (a crash after the work, before the record) leaves the total
unchanged the second time; `runs` logs every start, so a test can see that reruns happened.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, String, Text, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from VEZEPyCore.db.types import UTCDateTime
from VEZEPyCore.queue import QueueDefinition, QueueTable


class Base(DeclarativeBase):
    pass


class TestJob(Base):
    __tablename__ = "test_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TestEffect(Base):
    __tablename__ = "test_effects"

    job_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


class TestRun(Base):
    __tablename__ = "test_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str] = mapped_column(String(32))


class TestTotal(Base):
    __tablename__ = "test_total"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


JOBS = QueueTable(name="test.jobs", model=TestJob)


class _EnvironmentSettings:
    """What the dead-letter command reads, from VEZE_TEST_QUEUE_DB and REDIS_URL."""

    def __init__(self) -> None:
        self.db_url = os.environ["VEZE_TEST_QUEUE_DB"]
        self.redis_url = os.environ.get("VEZE_TEST_QUEUE_REDIS") or None
        self.queue_streams = True
        self.queue_stream_prefix = os.environ.get("VEZE_TEST_QUEUE_PREFIX", "veze:queue")
        self.queue_claim_idle_seconds = 1.0


DEFINITION = QueueDefinition(table=JOBS, settings=_EnvironmentSettings)


async def create_schema(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
        await connection.execute(insert(TestTotal).values(id=1, value=0))


async def add_jobs(
    sessionmaker: async_sessionmaker[AsyncSession], count: int, *, due_in: float = 0.0
) -> list[int]:
    now = datetime.now(UTC)
    rows = [
        {
            "name": f"job-{number}",
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now + timedelta(seconds=due_in),
            "created_at": now,
            "updated_at": now,
        }
        for number in range(count)
    ]
    async with sessionmaker.begin() as session:
        ids = await session.scalars(insert(TestJob).returning(TestJob.id), rows)
        return sorted(ids)


async def apply_effect(sessionmaker: async_sessionmaker[AsyncSession], job_id: int) -> bool:
    """The job's effect, at most once whatever the number of runs; True if it happened now."""
    async with sessionmaker.begin() as session:
        dialect = session.get_bind().dialect.name
        insert_of: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
        added = await session.scalar(
            insert_of(TestEffect)
            .values(job_id=job_id)
            .on_conflict_do_nothing(index_elements=["job_id"])
            .returning(TestEffect.job_id)
        )
        if added is None:
            return False
        await session.execute(update(TestTotal).values(value=TestTotal.value + 1))
        return True


async def log_run(sessionmaker: async_sessionmaker[AsyncSession], job_id: int, worker: str) -> None:
    async with sessionmaker.begin() as session:
        session.add(TestRun(job_id=job_id, worker=worker))


async def snapshot(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    """Statuses by job, the total, the effect rows and the runs per job."""
    async with sessionmaker() as session:
        jobs = {row.id: row for row in await session.scalars(select(TestJob))}
        total = await session.scalar(select(TestTotal.value))
        effects = sorted(await session.scalars(select(TestEffect.job_id)))
        counted = await session.execute(
            select(TestRun.job_id, func.count()).group_by(TestRun.job_id)
        )
        runs: dict[int, int] = {int(row[0]): int(row[1]) for row in counted.all()}
    return {"jobs": jobs, "total": total, "effects": effects, "runs": runs}
