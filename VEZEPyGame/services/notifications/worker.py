"""The summary-mail worker: works off `match_summary_outbox` in every Game process.

It is VEZEPyCore's leased-queue worker (VEZEPyCore/queue/worker.py): claims with a lease,
only the lease holder records the outcome, failures retried with exponential back-off and
jitter, Redis Streams dispatch when Redis is configured. An Email outage therefore delays
summaries but loses none. After `MAX_ATTEMPTS` failures, or a refusal retrying cannot fix, a
row is marked `failed` (a dead letter) with its `last_error` for an operator, who can replay it
(`python -m VEZEPyCore.queue dead-letters replay game.summary-mail ...`).
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyCore.queue import Backoff, GiveUp, Job, QueueWorker, StreamDispatch, stream_dispatch
from VEZEPyCore.queue.worker import Outcome
from VEZEPyGame.app.settings import GameSettings
from VEZEPyGame.services.notifications.delivery import (
    SYSTEM_MAIL_SCOPE,
    OutgoingMail,
    PermanentFailure,
    SystemMailSender,
)
from VEZEPyGame.services.notifications.metrics import SummaryMailMetrics
from VEZEPyGame.services.notifications.outbox import (
    SUMMARY_MAIL,
    add_summaries,
    waiting_summaries,
)
from VEZEPyGame.services.notifications.summary import FinishedMatch
from VEZEPyGame.services.notifications.token import ServiceTokenSource

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
MAX_ATTEMPTS = 12
INTERRUPTED = "interrupted: the game service stopped during the delivery; will retry"
BATCH_SIZE = 16
#: Delivery counter outcome per queue outcome (an interrupted attempt is not counted).
_OUTCOMES = {"done": "sent", "retry": "retry", "dead": "failed"}


def utcnow() -> datetime:
    return datetime.now(UTC)


class SummaryMailWorker(QueueWorker):
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        sender: SystemMailSender,
        backoff: Backoff,
        lease_seconds: float,
        poll_seconds: float,
        clock: Clock = utcnow,
        rng: random.Random | None = None,
        metrics: SummaryMailMetrics | None = None,
        dispatch: StreamDispatch | None = None,
    ) -> None:
        self._sender = sender
        self._metrics = metrics
        super().__init__(
            table=SUMMARY_MAIL,
            sessionmaker=sessionmaker,
            handler=self._deliver,
            backoff=backoff,
            lease_seconds=lease_seconds,
            poll_seconds=poll_seconds,
            max_attempts=MAX_ATTEMPTS,
            batch_size=BATCH_SIZE,
            clock=clock,
            rng=rng,
            dispatch=dispatch,
            on_outcome=self._count,
            interrupted=INTERRUPTED,
            label="summary mail worker",
        )

    async def _deliver(self, job: Job) -> None:
        row = job.row
        mail = OutgoingMail(
            to=row.address, subject=row.subject, text=row.body, message_id=row.message_id
        )
        try:
            await self._sender.send(mail)
        except PermanentFailure as exc:
            raise GiveUp(exc.detail) from exc
        # Anything else (Email down, slow or refusing) is retried by the queue worker.

    def _count(self, _job: Job, outcome: Outcome) -> None:
        if self._metrics is not None and outcome in _OUTCOMES:
            self._metrics.deliveries.labels(_OUTCOMES[outcome]).inc()


def summary_hooks(app: FastAPI) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The match hooks: `on_finished` writes the summaries in the result's transaction,
    `after_finished` dispatches them once it has committed (the worker sends)."""
    settings: GameSettings = app.state.settings

    async def on_finished(session: AsyncSession, match: FinishedMatch) -> None:
        await add_summaries(
            session,
            match,
            game_public_url=app.state.registry.public_url("game"),
            mail_domain=settings.mail_domain,
        )

    async def after_finished(match: FinishedMatch) -> None:
        # Only a wake-up: if this never runs (a crash right after the commit), the worker's
        # sweep finds the committed rows all the same.
        worker: SummaryMailWorker | None = getattr(app.state, "summary_mail_worker", None)
        if worker is None:
            return
        async with app.state.sessionmaker() as session:
            ids = await waiting_summaries(session, match_id=match.id)
        if ids:
            await worker.notify(ids)

    return on_finished, after_finished


@asynccontextmanager
async def summary_mail(app: FastAPI) -> AsyncIterator[None]:
    """Lifespan hook: the worker (unless switched off) and the match hooks that feed it."""
    settings: GameSettings = app.state.settings
    sender = SystemMailSender(
        clients=app.state.clients,
        tokens=ServiceTokenSource(
            settings=settings, clients=app.state.clients, scope=SYSTEM_MAIL_SCOPE
        ),
        deadline_seconds=settings.http_timeout_seconds,
    )
    dispatch = stream_dispatch(settings, SUMMARY_MAIL.name)
    worker = SummaryMailWorker(
        sessionmaker=app.state.sessionmaker,
        sender=sender,
        backoff=Backoff(
            initial_seconds=settings.summary_mail_initial_backoff_seconds,
            max_seconds=settings.summary_mail_max_backoff_seconds,
        ),
        lease_seconds=settings.summary_mail_lease_seconds,
        poll_seconds=settings.summary_mail_poll_seconds,
        metrics=SummaryMailMetrics(app),
        dispatch=dispatch,
    )
    app.state.summary_mail_worker = worker
    hooks = getattr(app.state, "match_hooks", None)
    if hooks is not None:
        # Registered after the ratings hook (create_app), so the summary sees the new rating.
        on_finished, after_finished = summary_hooks(app)
        hooks.on_finished.append(on_finished)
        hooks.after_finished.append(after_finished)
    try:
        if settings.summary_mail_worker:
            worker.start()
            app.state.ready_checks["summary_mail_worker"] = worker.check_running
        yield
    finally:
        await worker.stop()
        if dispatch is not None:
            await dispatch.close()
