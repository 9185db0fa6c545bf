"""The one leased-queue worker every durable queue runs (provisioning, outbound mail, summaries).

A service gives it a `QueueTable` (the rows), a handler (what one job does) and its retry
policy. Per job: claim the lease, run the handler, then record one outcome:

- the handler returned: done;
- it raised `GiveUp`, or the job ran out of attempts (`max_attempts`) or of lifetime (an
  `expires_at` column): dead, after the service's `on_dead` (a bounce, say) ran;
- it raised anything else (`Retry` says so on purpose): waiting again, due after exponential
  back-off with jitter (and never after its expiry, so the last try falls on it);
- it was cancelled (the process is stopping): handed back at once, due now.

Handlers must be idempotent: a job whose outcome was lost (a crash after the work, before the
record) runs again. Dispatch is either the database alone (a loop that sleeps until woken, the
next due row or a poll) or, with Redis, Redis Streams in a consumer group (streams.py) with
the database loop kept as a slower sweep that finds whatever a stream lost.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from redis.exceptions import RedisError
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from VEZEPyCore.errors import AppError
from VEZEPyCore.queue.backoff import Backoff
from VEZEPyCore.queue.streams import Entry, StreamDispatch
from VEZEPyCore.queue.table import Job, QueueTable, aware
from VEZEPyCore.queue.wakeup import WakeableLoop

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Handler = Callable[[Job], Awaitable[None]]
Outcome = Literal["done", "retry", "dead", "interrupted"]

DEFAULT_BATCH_SIZE = 16
#: How long a stopping worker spends handing back the lease of an interrupted job.
RELEASE_TIMEOUT_SECONDS = 2.0
#: Longest a consumer blocks in XREADGROUP before it looks at retries and dead consumers.
MAX_BLOCK_SECONDS = 1.0
#: How long `stop()` waits for the loop to end before cutting its Redis connection.
STOP_GRACE_SECONDS = 5.0
#: Pause after a failed stream round (Redis down), so the loop does not spin.
STREAM_ERROR_PAUSE_SECONDS = 1.0
INTERRUPTED = "interrupted: the worker stopped during the job; will retry"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Retry(Exception):
    """Raised by a handler: this attempt failed; try again after the back-off."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class GiveUp(Exception):
    """Raised by a handler: retrying cannot help; the job goes to the dead letters now."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class Failure:
    """Why a job failed, as `on_dead` sees it."""

    detail: str
    #: The handler gave up (`GiveUp`), as opposed to running out of attempts or lifetime.
    permanent: bool
    #: The job's lifetime (`expires_at`) ran out.
    expired: bool
    error: BaseException


OnDead = Callable[[Job, Failure], Awaitable[None]]
OnOutcome = Callable[[Job, Outcome], None]


def _cancel_if_stopping(error: BaseException) -> None:
    """A library that turned our cancellation into an error must not keep the loop alive."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from error


def describe(error: BaseException) -> str:
    """The text recorded in `last_error` for a failed attempt."""
    if isinstance(error, Retry | GiveUp | AppError):
        return str(error.detail)
    return f"{type(error).__name__}: {error}"


class QueueWorker(WakeableLoop):
    """Claims due jobs of one queue, runs them and records the outcome; `run()` loops forever."""

    def __init__(
        self,
        *,
        table: QueueTable,
        sessionmaker: async_sessionmaker[AsyncSession],
        handler: Handler,
        backoff: Backoff,
        lease_seconds: float,
        poll_seconds: float,
        max_attempts: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        clock: Clock = utcnow,
        rng: random.Random | None = None,
        dispatch: StreamDispatch | None = None,
        on_dead: OnDead | None = None,
        on_outcome: OnOutcome | None = None,
        interrupted: str = INTERRUPTED,
        label: str | None = None,
    ) -> None:
        super().__init__(
            poll_seconds=poll_seconds,
            clock=clock,
            name=f"queue-worker-{table.name}",
            label=label or f"{table.name} worker",
        )
        self.table = table
        self.dispatch = dispatch
        self._sessionmaker = sessionmaker
        self._handler = handler
        self._backoff = backoff
        self._lease = timedelta(seconds=lease_seconds)
        self._max_attempts = max_attempts
        self._batch_size = batch_size
        self._rng = rng or random.Random()
        self._on_dead = on_dead
        self._on_outcome = on_outcome
        self._interrupted = interrupted
        self._next_autoclaim = 0.0
        self._stopping = False
        self._background: set[asyncio.Task[None]] = set()
        #: Jobs this worker finished that a dead consumer had left pending (XAUTOCLAIM).
        self.reclaimed = 0

    # -- producing side ----------------------------------------------------------------------

    async def notify(self, ids: Sequence[int]) -> None:
        """Rows `ids` were committed: dispatch them (XADD, or wake the local loop).

        Best effort by design: if Redis is down the sweep finds the rows all the same.
        """
        if self.dispatch is None:
            self.wakeup.set()
            return
        try:
            await self.dispatch.publish(ids)
        except (RedisError, OSError):
            log.warning(
                "%s: could not publish %d jobs; the sweep will find them", self._label, len(ids)
            )
            self.wakeup.set()

    def notify_after_commit(self, session: AsyncSession, ids: Sequence[int]) -> None:
        """Dispatch `ids` once `session`'s transaction commits (nothing if it rolls back)."""
        key = ("veze.queue.pending", self.table.name)
        session.info.setdefault(key, []).extend(ids)
        listening = ("veze.queue.listening", self.table.name)
        if session.info.get(listening):
            return
        session.info[listening] = True

        # Listeners stay for the session's life (they cannot be removed while one runs); each
        # commit dispatches what that transaction added, a rollback forgets it.
        def after_commit(sync: Session) -> None:
            # Runs on the event loop's thread (SQLAlchemy's greenlet bridge).
            committed = sync.info.pop(key, None)
            if committed:
                task = asyncio.get_running_loop().create_task(self.notify(committed))
                self._background.add(task)
                task.add_done_callback(self._background.discard)

        def after_rollback(sync: Session) -> None:
            sync.info.pop(key, None)

        event.listen(session.sync_session, "after_commit", after_commit)
        event.listen(session.sync_session, "after_rollback", after_rollback)

    # -- the database path -------------------------------------------------------------------

    async def claim_due(
        self, *, now: datetime | None = None, ids: Sequence[int] | None = None
    ) -> list[Job]:
        """Take the lease on up to one batch of due jobs (only among `ids` when given)."""
        limit = self._batch_size if ids is None else max(len(ids), 1)
        return await self.table.claim(
            self._sessionmaker, now=now or self._clock(), lease=self._lease, limit=limit, ids=ids
        )

    async def process_due(self, *, now: datetime | None = None) -> int:
        """Claim up to one batch of due jobs and run them concurrently; how many."""
        claimed = await self.claim_due(now=now)
        await self._run_all(claimed)
        return len(claimed)

    async def _run_all(self, jobs: Sequence[Job]) -> set[int]:
        """Run `jobs` concurrently; the ids whose outcome was recorded."""
        results = await asyncio.gather(*(self.process(job) for job in jobs), return_exceptions=True)
        recorded: set[int] = set()
        for job, result in zip(jobs, results, strict=True):
            if isinstance(result, asyncio.CancelledError):
                raise result
            if isinstance(result, BaseException):
                # Recording failed (the database is down, say): the lease runs out, it reruns.
                log.error("%s: job %d: no outcome recorded", self._label, job.id, exc_info=result)
            else:
                recorded.add(job.id)
        return recorded

    async def next_due(self) -> datetime | None:
        return await self.table.next_due(self._sessionmaker)

    async def process(self, job: Job) -> None:
        """Run one claimed job and record its outcome (see the module docstring)."""
        try:
            await self._handler(job)
        except asyncio.CancelledError:
            await self._release(job)
            raise
        except Exception as exc:
            await self._failed(job, exc)
            return
        await self._record(job, "done", status=self.table.done, error=None, at=self._clock())

    async def _failed(self, job: Job, exc: Exception) -> None:
        detail = describe(exc)
        if not isinstance(exc, Retry | GiveUp | AppError):
            log.error("%s: job %d failed", self._label, job.id, exc_info=exc)
        now = self._clock()
        expires = getattr(job.row, "expires_at", None)
        expires = aware(expires) if isinstance(expires, datetime) else None
        expired = expires is not None and now >= expires
        permanent = isinstance(exc, GiveUp)
        exhausted = self._max_attempts is not None and job.attempts >= self._max_attempts
        if permanent or expired or exhausted:
            log.warning(
                "%s: job %d given up after %d attempts%s: %s",
                self._label,
                job.id,
                job.attempts,
                " (expired)" if expired else "",
                detail,
            )
            if self._on_dead is not None:
                # First, then the record: a crash in between repeats the attempt, which the
                # service's dead-letter work (a bounce with a fixed Message-ID) must tolerate.
                await self._on_dead(job, Failure(detail, permanent, expired, exc))
            if await self._record(job, "dead", status=self.table.dead, error=detail, at=now):
                await self._stream_call(
                    "dead letter",
                    lambda d: d.dead_letter(job.id, error=detail, attempts=job.attempts),
                )
            return
        retry_at = now + timedelta(seconds=self._backoff.delay(job.attempts, self._rng))
        if expires is not None:
            retry_at = min(retry_at, expires)  # the last try falls on the expiry itself
        log.info(
            "%s: job %d attempt %d failed, retry in %.2fs: %s",
            self._label,
            job.id,
            job.attempts,
            (retry_at - now).total_seconds(),
            detail,
        )
        if await self._record(job, "retry", status=self.table.waiting, error=detail, at=retry_at):
            await self._stream_call("retry", lambda d: d.retry_at(job.id, retry_at.timestamp()))

    async def _record(
        self, job: Job, outcome: Outcome, *, status: str, error: str | None, at: datetime
    ) -> bool:
        if self._on_outcome is not None:
            self._on_outcome(job, outcome)
        held = await self.table.finish(
            self._sessionmaker,
            job,
            status=status,
            error=error,
            next_attempt_at=at,
            now=self._clock(),
        )
        if not held:
            # The lease ran out during the job and another worker took it over; its outcome
            # is the one that counts (handlers are idempotent either way).
            log.warning("%s: job %d: lease lost, another worker owns it", self._label, job.id)
        return held

    async def _release(self, job: Job) -> None:
        """Hand an interrupted job back at once instead of waiting for its lease to run out."""
        try:
            async with asyncio.timeout(RELEASE_TIMEOUT_SECONDS):
                await asyncio.shield(
                    self._record(
                        job,
                        "interrupted",
                        status=self.table.waiting,
                        error=self._interrupted,
                        at=self._clock(),
                    )
                )
        except Exception:  # best effort: the lease still runs out on its own
            log.warning("%s: could not hand back job %d", self._label, job.id)

    async def _stream_call(
        self, what: str, call: Callable[[StreamDispatch], Awaitable[Any]]
    ) -> None:
        if self.dispatch is None:
            return
        try:
            await call(self.dispatch)
        except (RedisError, OSError):
            # The row is the record; the sweep retries it when due whatever Redis lost.
            log.warning("%s: could not record the %s in Redis", self._label, what)

    # -- the Redis Streams path --------------------------------------------------------------

    async def run(self) -> None:
        if self.dispatch is None:
            await super().run()
            return
        async with asyncio.TaskGroup() as group:
            group.create_task(super().run(), name=f"{self._name}-sweep")
            group.create_task(self._consume_forever(), name=f"{self._name}-streams")

    async def _consume_forever(self) -> None:
        assert self.dispatch is not None
        # The flag as well as the cancellation: a blocking XREADGROUP has been seen to lose a
        # cancellation (redis-py on Python 3.11); the read ends within a second anyway.
        while not self._stopping:
            try:
                await self.consume_once()
            except (RedisError, OSError) as exc:
                _cancel_if_stopping(exc)
                if "NOGROUP" in str(exc):
                    self.dispatch.forget_group()  # Redis restarted empty: make the group again
                log.warning("%s: stream round failed: %s", self._label, exc)
                await asyncio.sleep(STREAM_ERROR_PAUSE_SECONDS)
            except Exception as exc:  # the database is down, say: keep consuming, try again
                _cancel_if_stopping(exc)
                log.exception("%s: stream round failed", self._label)
                await asyncio.sleep(STREAM_ERROR_PAUSE_SECONDS)

    async def consume_once(self) -> int:
        """One round: due retries into the stream, then dead consumers' entries (XAUTOCLAIM)
        when it is time, else new entries (XREADGROUP); how many jobs this worker ran."""
        dispatch = self.dispatch
        if dispatch is None:
            raise RuntimeError("no stream dispatch configured")
        await dispatch.promote_due()
        loop = asyncio.get_running_loop()
        claim_every = max(dispatch.claim_idle_ms / 2000, 0.05)
        if loop.time() >= self._next_autoclaim:
            self._next_autoclaim = loop.time() + claim_every
            entries = await dispatch.autoclaim(count=self._batch_size)
            if entries:
                ran = await self.handle_entries(entries)
                self.reclaimed += ran
                return ran
        block = min(self._poll_seconds, MAX_BLOCK_SECONDS, claim_every)
        entries = await dispatch.read(count=self._batch_size, block_ms=max(int(block * 1000), 1))
        return await self.handle_entries(entries)

    async def handle_entries(self, entries: Sequence[Entry]) -> int:
        """Run the jobs `entries` name, acknowledging each entry whose row needs nothing more
        from it; how many jobs ran here."""
        if not entries or self.dispatch is None:
            return 0
        ids = sorted({entry.row_id for entry in entries if entry.row_id is not None})
        jobs = await self.claim_due(ids=ids)
        recorded = await self._run_all(jobs)
        ran = {job.id for job in jobs}
        # A row another worker holds a lease on keeps its entry pending: if that worker is
        # dead, XAUTOCLAIM brings the entry back here once it has been idle long enough.
        busy = await self.table.leased_ids(
            self._sessionmaker, [row_id for row_id in ids if row_id not in ran], self._clock()
        )
        done = [
            entry.entry_id
            for entry in entries
            if entry.row_id is None
            or (entry.row_id in ran and entry.row_id in recorded)
            or (entry.row_id not in ran and entry.row_id not in busy)
        ]
        await self.dispatch.ack(done)
        return len(jobs)

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=STOP_GRACE_SECONDS)
            if not task.done() and self.dispatch is not None:
                # Still inside a Redis read: cutting its connection ends it.
                await self.dispatch.redis.connection_pool.disconnect()
                await asyncio.wait({task}, timeout=STOP_GRACE_SECONDS)
            if not task.done():
                log.error("%s did not stop within %.0fs", self._label, 2 * STOP_GRACE_SECONDS)
            elif not task.cancelled() and task.exception() is not None:
                log.error("%s ended with an error", self._label, exc_info=task.exception())
        self._stopping = False  # a later start() runs again
        pending = list(self._background)
        if pending:  # dispatches still in flight: a moment to finish, then they are dropped
            _done, late = await asyncio.wait(pending, timeout=RELEASE_TIMEOUT_SECONDS)
            for task in late:
                task.cancel()
