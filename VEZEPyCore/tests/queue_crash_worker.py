"""A queue worker process for the crash tests, killed with SIGKILL in the middle of a batch.

    python -m VEZEPyCore.tests.queue_crash_worker DB_URL [--redis URL --prefix P] --lease S

Of the jobs it claims, the first `--finish` run to the end; the next `--effect-then-hang`
apply their effect and then hang (the work is done, its record is not); the rest hang before
doing anything. The test waits until every claimed job has started, then kills the process.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools

from VEZEPyCore.db.engine import make_engine, make_sessionmaker
from VEZEPyCore.queue import Backoff, Job, QueueWorker, StreamDispatch
from VEZEPyCore.tests.queue_support import JOBS, apply_effect, log_run


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("db_url")
    parser.add_argument("--redis")
    parser.add_argument("--prefix", default="veze:queue")
    parser.add_argument("--lease", type=float, required=True)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--finish", type=int, default=3)
    parser.add_argument("--effect-then-hang", type=int, default=2)
    args = parser.parse_args()

    engine = make_engine(args.db_url)
    sessionmaker = make_sessionmaker(engine)
    started = itertools.count(1)
    forever = asyncio.Event()

    async def handler(job: Job) -> None:
        number = next(started)
        await log_run(sessionmaker, job.id, "doomed")
        if number > args.finish + args.effect_then_hang:
            await forever.wait()  # killed before doing anything
        await apply_effect(sessionmaker, job.id)
        if number > args.finish:
            await forever.wait()  # killed after the work, before its outcome is recorded

    dispatch = None
    if args.redis:
        dispatch = StreamDispatch.from_url(
            args.redis, queue=JOBS.name, prefix=args.prefix, claim_idle_seconds=600
        )
    worker = QueueWorker(
        table=JOBS,
        sessionmaker=sessionmaker,
        handler=handler,
        backoff=Backoff(initial_seconds=0.1, max_seconds=1.0),
        lease_seconds=args.lease,
        poll_seconds=0.1,
        batch_size=args.batch,
        dispatch=dispatch,
    )
    if dispatch is not None:
        while True:  # the stream path alone: no database sweep in this process
            await worker.consume_once()
    else:
        await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
