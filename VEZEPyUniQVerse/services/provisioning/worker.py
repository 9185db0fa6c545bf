"""The provisioning worker: runs in every portal process and works off `provisioning_tasks`.

Claiming is one conditional UPDATE (`status = 'pending' AND next_attempt_at <= now`) that
pushes `next_attempt_at` a lease into the future, stamps a random lease token and counts the
attempt. The statement is atomic on SQLite (one writer at a time) and on PostgreSQL (a second
worker's UPDATE re-checks the condition on the row it waited for, finds it no longer due and
skips it), so two workers never call out for the same task at once. Only the lease holder may
record the outcome; a worker that dies mid-call simply lets the lease run out and the task falls
due again. Targets are idempotent, so a call whose answer was lost is safe to repeat.

Failures are retried with exponential back-off (`initial * 2**(attempts-1)`, +-10% jitter,
capped), forever: the account already exists, and `last_error` on the account page and in the
runbook's query tells an operator what is wrong.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyCore.errors import AppError
from VEZEPyCore.queue import Backoff, WakeableLoop
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.db.models import ProvisioningTask
from VEZEPyUniQVerse.services.provisioning.queue import install_wakeup
from VEZEPyUniQVerse.services.provisioning.targets import provision_target

log = logging.getLogger(__name__)

#: `(target, handle, display_name)` -> True if the call created the resource.
TargetCaller = Callable[[str, str, str], Awaitable[bool]]
Clock = Callable[[], datetime]

MAX_ERROR_LENGTH = 500
DEFAULT_BATCH_SIZE = 16
#: How long a stopping worker spends handing back the lease of an interrupted call.
RELEASE_TIMEOUT_SECONDS = 2.0
INTERRUPTED = "interrupted: the portal stopped during the call; will retry"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ClaimedTask:
    id: int
    handle: str
    target: str
    display_name: str
    #: Including the attempt this claim is for.
    attempts: int
    lease_token: str


class ProvisioningWorker(WakeableLoop):
    """Claims due tasks, calls their targets and records the outcome; `run()` loops forever."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        call_target: TargetCaller,
        backoff: Backoff,
        lease_seconds: float,
        poll_seconds: float,
        batch_size: int = DEFAULT_BATCH_SIZE,
        clock: Clock = utcnow,
        rng: random.Random | None = None,
        metrics: CollectorRegistry | None = None,
    ) -> None:
        # The loop (wake-up event set after commit by `enqueue_account` through the sessions'
        # info, see queue.py; `passes`; start/stop/readiness) is VEZEPyCore.queue's.
        super().__init__(
            poll_seconds=poll_seconds,
            clock=clock,
            name="provisioning-worker",
            label="provisioning worker",
        )
        self._sessionmaker = sessionmaker
        self._call_target = call_target
        self._backoff = backoff
        self._lease = timedelta(seconds=lease_seconds)
        self._batch_size = batch_size
        self._rng = rng or random.Random()
        self._attempts = Counter(
            "veze_provisioning_attempts",
            "Provisioning calls to target services, by outcome (ok, failed, interrupted)",
            ["target", "outcome"],
            registry=metrics,
        )
        for target in ("email", "game"):  # every series exists at 0, so alerts see the first
            for outcome in ("ok", "failed", "interrupted"):
                self._attempts.labels(target, outcome)

    # -- one pass ----------------------------------------------------------------------------

    async def process_due(self, *, now: datetime | None = None) -> int:
        """Claim up to one batch of due tasks and work them off concurrently; how many."""
        claimed = await self.claim_due(now=now)
        results = await asyncio.gather(
            *(self.process(task) for task in claimed), return_exceptions=True
        )
        for task, result in zip(claimed, results, strict=True):
            if isinstance(result, asyncio.CancelledError):
                raise result
            if isinstance(result, BaseException):
                # Recording the outcome failed: the lease runs out and the task is retried.
                log.error(
                    "provisioning %s for %s: could not record the outcome",
                    task.target,
                    task.handle,
                    exc_info=result,
                )
        return len(claimed)

    async def claim_due(self, *, now: datetime | None = None) -> list[ClaimedTask]:
        """Take the lease on up to one batch of due tasks (see the module docstring)."""
        now = now or self._clock()
        token = secrets.token_hex(16)
        due = (
            select(ProvisioningTask.id)
            .where(ProvisioningTask.status == "pending", ProvisioningTask.next_attempt_at <= now)
            .order_by(ProvisioningTask.next_attempt_at, ProvisioningTask.id)
            .limit(self._batch_size)
        )
        statement = (
            update(ProvisioningTask)
            .where(
                ProvisioningTask.id.in_(due),
                # Repeated outside the subquery: PostgreSQL re-checks these on a row another
                # worker updated while this statement waited for it.
                ProvisioningTask.status == "pending",
                ProvisioningTask.next_attempt_at <= now,
            )
            .values(
                lease_token=token,
                next_attempt_at=now + self._lease,
                attempts=ProvisioningTask.attempts + 1,
                updated_at=now,
            )
            .returning(
                ProvisioningTask.id,
                ProvisioningTask.handle,
                ProvisioningTask.target,
                ProvisioningTask.display_name,
                ProvisioningTask.attempts,
            )
            .execution_options(synchronize_session=False)
        )
        async with self._sessionmaker.begin() as session:
            rows = (await session.execute(statement)).all()
        return [
            ClaimedTask(
                id=row.id,
                handle=row.handle,
                target=row.target,
                display_name=row.display_name,
                attempts=row.attempts,
                lease_token=token,
            )
            for row in sorted(rows, key=lambda row: row.id)
        ]

    async def process(self, task: ClaimedTask) -> None:
        """Call the target for one claimed task and record what happened."""
        try:
            created = await self._call_target(task.target, task.handle, task.display_name)
        except asyncio.CancelledError:
            await self._release(task)
            raise
        except AppError as exc:
            error = exc.detail
        except Exception as exc:  # a bug must not stop the worker; it is recorded and retried
            log.exception("provisioning %s for %s failed", task.target, task.handle)
            error = f"{type(exc).__name__}: {exc}"
        else:
            self._attempts.labels(task.target, "ok").inc()
            log.info(
                "provisioned %s for %s (%s)",
                task.target,
                task.handle,
                "created" if created else "already there",
            )
            await self._finish(task, status="done", error=None, next_attempt_at=self._clock())
            return
        self._attempts.labels(task.target, "failed").inc()
        delay = self._backoff.delay(task.attempts, self._rng)
        log.warning(
            "provisioning %s for %s failed (attempt %d), retrying in %.2fs: %s",
            task.target,
            task.handle,
            task.attempts,
            delay,
            error,
        )
        await self._finish(
            task,
            status="pending",
            error=error,
            next_attempt_at=self._clock() + timedelta(seconds=delay),
        )

    # -- helpers -----------------------------------------------------------------------------

    async def _finish(
        self, task: ClaimedTask, *, status: str, error: str | None, next_attempt_at: datetime
    ) -> bool:
        """Record an outcome and drop the lease, if this worker still holds it."""
        statement = (
            update(ProvisioningTask)
            .where(
                ProvisioningTask.id == task.id,
                ProvisioningTask.lease_token == task.lease_token,
            )
            .values(
                status=status,
                last_error=error[:MAX_ERROR_LENGTH] if error is not None else None,
                next_attempt_at=next_attempt_at,
                lease_token=None,
                updated_at=self._clock(),
            )
            .execution_options(synchronize_session=False)
        )
        async with self._sessionmaker.begin() as session:
            result = await session.execute(statement)
        held = bool(getattr(result, "rowcount", 0))
        if not held:
            # The lease ran out during the call and another worker took the task over; its
            # outcome is the one that counts (the targets are idempotent either way).
            log.warning("provisioning %s for %s: lease lost", task.target, task.handle)
        return held

    async def _release(self, task: ClaimedTask) -> None:
        """Hand an interrupted task back at once instead of waiting for its lease to run out."""
        self._attempts.labels(task.target, "interrupted").inc()
        try:
            async with asyncio.timeout(RELEASE_TIMEOUT_SECONDS):
                await asyncio.shield(
                    self._finish(
                        task, status="pending", error=INTERRUPTED, next_attempt_at=self._clock()
                    )
                )
        except Exception:  # best effort: the lease still expires on its own
            log.warning("could not release the provisioning lease of task %d", task.id)

    async def next_due(self) -> datetime | None:
        """When the earliest pending task falls due (for the loop's sleep)."""
        async with self._sessionmaker() as session:
            next_due: datetime | None = await session.scalar(
                select(func.min(ProvisioningTask.next_attempt_at)).where(
                    ProvisioningTask.status == "pending"
                )
            )
        return next_due


def worker_for_app(app: FastAPI) -> ProvisioningWorker:
    """A worker wired to the portal's state: its database, settings, clients and metrics."""
    settings: PortalSettings = app.state.settings

    async def call_target(target: str, handle: str, display_name: str) -> bool:
        return await provision_target(
            app.state, target=target, handle=handle, display_name=display_name
        )

    return ProvisioningWorker(
        sessionmaker=app.state.sessionmaker,
        call_target=call_target,
        backoff=Backoff(
            initial_seconds=settings.provisioning_initial_backoff_seconds,
            max_seconds=settings.provisioning_max_backoff_seconds,
        ),
        lease_seconds=settings.provisioning_lease_seconds,
        poll_seconds=settings.provisioning_poll_seconds,
        metrics=app.state.metrics_registry,
    )


@asynccontextmanager
async def provisioning_worker(app: FastAPI) -> AsyncIterator[None]:
    """Lifespan hook: start the worker (unless disabled) and stop it on shutdown."""
    worker = worker_for_app(app)
    app.state.provisioning_worker = worker
    # Every session of this app carries the wake-up event, so an enqueue pokes the worker as
    # soon as its transaction commits (queue.py); without it the worker finds it by polling.
    install_wakeup(app.state.sessionmaker, worker.wakeup)
    settings: PortalSettings = app.state.settings
    if not settings.provisioning_worker:
        yield
        return
    worker.start()
    app.state.ready_checks["provisioning_worker"] = worker.check_running
    try:
        yield
    finally:
        await worker.stop()
