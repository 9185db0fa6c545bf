"""The provisioning worker: runs in every portal process and works off `provisioning_tasks`.

It is VEZEPyCore's leased-queue worker (VEZEPyCore/queue/worker.py) with one job: call the
task's target service. Claims, leases, back-off, hand-back on shutdown and Redis Streams
dispatch are the shared worker's; targets are idempotent, so a call whose answer was lost is
safe to repeat.

Failures are retried with exponential back-off (`initial * 2**(attempts-1)`, +-10% jitter,
capped), forever unless `UNI_PROVISIONING_MAX_ATTEMPTS` is set: the account already exists,
and `last_error` on the account page and in the runbook's query tells an operator what is wrong.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyCore.queue import Backoff, Job, QueueWorker, StreamDispatch, stream_dispatch
from VEZEPyCore.queue.worker import Outcome
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.services.provisioning.queue import PROVISIONING, install_notifier
from VEZEPyUniQVerse.services.provisioning.targets import provision_target

log = logging.getLogger(__name__)

#: `(target, handle, display_name)` -> True if the call created the resource.
TargetCaller = Callable[[str, str, str], Awaitable[bool]]
Clock = Callable[[], datetime]

DEFAULT_BATCH_SIZE = 16
INTERRUPTED = "interrupted: the portal stopped during the call; will retry"
#: Counter outcome per queue outcome.
_OUTCOMES = {"done": "ok", "retry": "failed", "dead": "failed", "interrupted": "interrupted"}


def utcnow() -> datetime:
    return datetime.now(UTC)


class ProvisioningWorker(QueueWorker):
    """The shared queue worker, calling each claimed task's target; `run()` loops forever."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        call_target: TargetCaller,
        backoff: Backoff,
        lease_seconds: float,
        poll_seconds: float,
        max_attempts: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        clock: Clock = utcnow,
        rng: random.Random | None = None,
        metrics: CollectorRegistry | None = None,
        dispatch: StreamDispatch | None = None,
    ) -> None:
        self._call_target = call_target
        self._attempts = Counter(
            "veze_provisioning_attempts",
            "Provisioning calls to target services, by outcome (ok, failed, interrupted)",
            ["target", "outcome"],
            registry=metrics,
        )
        for target in ("email", "game"):  # every series exists at 0, so alerts see the first
            for outcome in ("ok", "failed", "interrupted"):
                self._attempts.labels(target, outcome)
        super().__init__(
            table=PROVISIONING,
            sessionmaker=sessionmaker,
            handler=self._provision,
            backoff=backoff,
            lease_seconds=lease_seconds,
            poll_seconds=poll_seconds,
            max_attempts=max_attempts,
            batch_size=batch_size,
            clock=clock,
            rng=rng,
            dispatch=dispatch,
            on_outcome=self._count,
            interrupted=INTERRUPTED,
            label="provisioning worker",
        )

    async def _provision(self, job: Job) -> None:
        task = job.row
        created = await self._call_target(task.target, task.handle, task.display_name)
        log.info(
            "provisioned %s for %s (%s)",
            task.target,
            task.handle,
            "created" if created else "already there",
        )

    def _count(self, job: Job, outcome: Outcome) -> None:
        self._attempts.labels(job.row.target, _OUTCOMES[outcome]).inc()


def worker_for_app(app: FastAPI, *, dispatch: StreamDispatch | None = None) -> ProvisioningWorker:
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
        max_attempts=settings.provisioning_max_attempts or None,
        metrics=app.state.metrics_registry,
        dispatch=dispatch,
    )


@asynccontextmanager
async def provisioning_worker(app: FastAPI) -> AsyncIterator[None]:
    """Lifespan hook: start the worker (unless disabled) and stop it on shutdown."""
    settings: PortalSettings = app.state.settings
    # With Redis the stream carries new tasks to whichever portal process is free; a process
    # with its worker off still publishes to it.
    dispatch = stream_dispatch(settings, PROVISIONING.name)
    worker = worker_for_app(app, dispatch=dispatch)
    app.state.provisioning_worker = worker
    # Every session of this app carries the worker, so an enqueue dispatches its tasks as soon
    # as its transaction commits (queue.py); without it the worker finds them by polling.
    install_notifier(app.state.sessionmaker, worker)
    try:
        if settings.provisioning_worker:
            worker.start()
            app.state.ready_checks["provisioning_worker"] = worker.check_running
        yield
    finally:
        await worker.stop()
        if dispatch is not None:
            await dispatch.close()
