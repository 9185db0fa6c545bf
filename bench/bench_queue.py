"""Throughput of the durable queue (VEZEPyCore/queue): the database path and Redis Streams.

    python bench/bench_queue.py                      # SQLite in a temporary directory
    python bench/bench_queue.py --db postgresql+asyncpg://veze:veze@127.0.0.1:5442/bench \\
        --redis redis://127.0.0.1:6392/0 --jobs 2000 --workers 2

Queues `--jobs` no-op jobs (each applies the idempotent test effect: one small transaction),
then runs `--workers` workers in this process until all are done, and prints jobs/s and the
time from enqueue to done (p50/p99). With `--redis` it runs once per path: the database loop
alone, then stream dispatch (the producer publishes every id after its commit). The database
must exist and be empty of the test tables (a fresh one is made per path).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from VEZEPyCore.db.engine import make_engine, make_sessionmaker
from VEZEPyCore.queue import Backoff, Job, QueueWorker, StreamDispatch
from VEZEPyCore.tests.queue_support import JOBS, add_jobs, apply_effect, create_schema, snapshot


async def fresh_database(base: str | None, directory: Path) -> str:
    if base is None:
        return f"sqlite+aiosqlite:///{directory / f'bench-{uuid.uuid4().hex[:6]}.db'}"
    name = f"bench_queue_{uuid.uuid4().hex[:8]}"
    admin = make_engine(base, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return make_url(base).set(database=name).render_as_string(hide_password=False)


async def drop_database(base: str | None, db_url: str) -> None:
    if base is None:
        return  # the temporary directory goes
    admin = make_engine(base, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        name = make_url(db_url).database
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


async def run(path: str, db_url: str, redis_url: str | None, jobs: int, workers: int) -> None:
    engine = make_engine(db_url)
    await create_schema(engine)
    sessionmaker = make_sessionmaker(engine)
    finished: dict[int, float] = {}
    all_done = asyncio.Event()

    async def handler(job: Job) -> None:
        await apply_effect(sessionmaker, job.id)
        finished[job.id] = time.perf_counter()
        if len(finished) >= jobs:
            all_done.set()

    prefix = f"bench:{uuid.uuid4().hex[:8]}"
    dispatches: list[StreamDispatch] = []
    running: list[QueueWorker] = []
    for _ in range(workers):
        dispatch = None
        if redis_url is not None:
            dispatch = StreamDispatch.from_url(redis_url, queue=JOBS.name, prefix=prefix)
            dispatches.append(dispatch)
        worker = QueueWorker(
            table=JOBS,
            sessionmaker=sessionmaker,
            handler=handler,
            backoff=Backoff(initial_seconds=1.0, max_seconds=10.0),
            lease_seconds=60.0,
            poll_seconds=0.5,
            batch_size=32,
            dispatch=dispatch,
        )
        worker.start()
        running.append(worker)
    await asyncio.sleep(0.5)  # the workers' first pass finds nothing

    queued: dict[int, float] = {}
    started = time.perf_counter()
    for _ in range(0, jobs, 100):
        ids = await add_jobs(sessionmaker, min(100, jobs - len(queued)))
        now = time.perf_counter()
        queued.update(dict.fromkeys(ids, now))
        await running[0].notify(ids)
    async with asyncio.timeout(600):
        await all_done.wait()
    elapsed = time.perf_counter() - started
    for worker in running:
        await worker.stop()
    state = await snapshot(sessionmaker)
    for dispatch in dispatches:
        await dispatch.redis.delete(dispatch.stream, dispatch.delayed, dispatch.dead)
        await dispatch.close()
    await engine.dispose()
    latencies = sorted((finished[job_id] - queued[job_id]) * 1000 for job_id in queued)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"{path:>8} | {make_url(db_url).get_backend_name():>10} | workers {workers} | "
        f"{jobs} jobs in {elapsed:.2f}s = {jobs / elapsed:,.0f} jobs/s | "
        f"enqueue->done p50 {statistics.median(latencies):.0f} ms p99 {p99:.0f} ms | "
        f"effects {state['total']}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="a PostgreSQL server URL (default: SQLite files)")
    parser.add_argument("--redis", help="Redis URL: also measure stream dispatch")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="veze-bench-queue-") as directory:
        paths = [("database", None)] + ([("streams", args.redis)] if args.redis else [])
        for path, redis_url in paths:
            url = await fresh_database(args.db, Path(directory))
            try:
                await run(path, url, redis_url, args.jobs, args.workers)
            finally:
                await drop_database(args.db, url)


if __name__ == "__main__":
    asyncio.run(main())
