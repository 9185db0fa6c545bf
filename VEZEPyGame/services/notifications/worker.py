"""The summary-mail worker: works off `match_summary_outbox` in every Game process.

The same leased-queue pattern as the portal's provisioning worker (VEZEPyCore.queue): one
conditional UPDATE claims due rows and pushes them a lease into the future, only the lease
holder records the outcome, failures are retried with exponential back-off and jitter. An Email
outage therefore delays summaries but loses none. After `MAX_ATTEMPTS` failures, or a refusal
retrying cannot fix, a row is marked `failed` with its `last_error` for an operator.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyCore.errors import AppError
from VEZEPyCore.queue import Backoff, WakeableLoop
from VEZEPyGame.app.settings import GameSettings
from VEZEPyGame.db.notifications import SummaryMail
from VEZEPyGame.services.notifications.delivery import (
    SYSTEM_MAIL_SCOPE,
    OutgoingMail,
    PermanentFailure,
    SystemMailSender,
)
from VEZEPyGame.services.notifications.metrics import SummaryMailMetrics
from VEZEPyGame.services.notifications.outbox import enqueue_summaries
from VEZEPyGame.services.notifications.summary import FinishedMatch
from VEZEPyGame.services.notifications.token import ServiceTokenSource

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
MAX_ATTEMPTS = 12
INTERRUPTED = "interrupted: the game service stopped during the delivery; will retry"
MAX_ERROR_LENGTH = 500
BATCH_SIZE = 16


def utcnow() -> datetime:
    return datetime.now(UTC)


class SummaryMailWorker(WakeableLoop):
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
    ) -> None:
        super().__init__(
            poll_seconds=poll_seconds,
            clock=clock,
            name="summary-mail-worker",
            label="summary mail worker",
        )
        self._sessionmaker = sessionmaker
        self._sender = sender
        self._backoff = backoff
        self._lease = timedelta(seconds=lease_seconds)
        self._rng = rng or random.Random()
        self._metrics = metrics

    async def process_due(self) -> int:
        now = self._clock()
        token = secrets.token_hex(16)
        due = (
            select(SummaryMail.id)
            .where(SummaryMail.status == "pending", SummaryMail.next_attempt_at <= now)
            .order_by(SummaryMail.next_attempt_at, SummaryMail.id)
            .limit(BATCH_SIZE)
        )
        claim = (
            update(SummaryMail)
            .where(
                SummaryMail.id.in_(due),
                # Repeated outside the subquery: PostgreSQL re-checks them on a row another
                # worker updated while this statement waited.
                SummaryMail.status == "pending",
                SummaryMail.next_attempt_at <= now,
            )
            .values(
                lease_token=token,
                next_attempt_at=now + self._lease,
                attempts=SummaryMail.attempts + 1,
                updated_at=now,
            )
            .returning(
                SummaryMail.id,
                SummaryMail.address,
                SummaryMail.subject,
                SummaryMail.body,
                SummaryMail.message_id,
                SummaryMail.attempts,
            )
            .execution_options(synchronize_session=False)
        )
        async with self._sessionmaker.begin() as session:
            rows = (await session.execute(claim)).all()
        results = await asyncio.gather(
            *(self._deliver(row, token) for row in rows), return_exceptions=True
        )
        for result in results:
            if isinstance(result, asyncio.CancelledError):
                raise result
            if isinstance(result, BaseException):
                log.error("summary mail: could not record an outcome", exc_info=result)
        return len(rows)

    async def _deliver(self, row: Any, token: str) -> None:
        mail = OutgoingMail(
            to=row.address, subject=row.subject, text=row.body, message_id=row.message_id
        )
        try:
            await self._sender.send(mail)
        except asyncio.CancelledError:
            await self._finish(row.id, token, status="pending", error=INTERRUPTED, delay=0.0)
            raise
        except PermanentFailure as exc:
            log.warning("summary mail %s to %s refused for good: %s", row.id, row.address, exc)
            await self._finish(row.id, token, status="failed", error=exc.detail, delay=0.0)
            return
        except Exception as exc:  # Email down, slow or refusing: retried later
            error = exc.detail if isinstance(exc, AppError) else f"{type(exc).__name__}: {exc}"
            if row.attempts >= MAX_ATTEMPTS:
                await self._finish(row.id, token, status="failed", error=error, delay=0.0)
                return
            delay = self._backoff.delay(row.attempts, self._rng)
            log.info(
                "summary mail %s: attempt %d failed, retry in %.1fs: %s",
                row.id,
                row.attempts,
                delay,
                error,
            )
            await self._finish(row.id, token, status="pending", error=error, delay=delay)
            return
        await self._finish(row.id, token, status="sent", error=None, delay=0.0)

    async def _finish(
        self, row_id: int, token: str, *, status: str, error: str | None, delay: float
    ) -> None:
        if self._metrics is not None and error != INTERRUPTED:
            outcome = {"sent": "sent", "failed": "failed"}.get(status, "retry")
            self._metrics.deliveries.labels(outcome).inc()
        now = self._clock()
        statement = (
            update(SummaryMail)
            .where(SummaryMail.id == row_id, SummaryMail.lease_token == token)
            .values(
                status=status,
                last_error=error[:MAX_ERROR_LENGTH] if error else None,
                next_attempt_at=now + timedelta(seconds=delay),
                lease_token=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        async with self._sessionmaker.begin() as session:
            await session.execute(statement)

    async def next_due(self) -> datetime | None:
        async with self._sessionmaker() as session:
            next_due: datetime | None = await session.scalar(
                select(func.min(SummaryMail.next_attempt_at)).where(SummaryMail.status == "pending")
            )
        return next_due


def send_match_summary(app: FastAPI) -> Callable[[FinishedMatch], Any]:
    """The `after_finished` hook: queue the summaries of a finished match (the worker sends)."""
    settings: GameSettings = app.state.settings

    async def hook(match: FinishedMatch) -> None:
        worker: SummaryMailWorker | None = getattr(app.state, "summary_mail_worker", None)
        await enqueue_summaries(
            app.state.sessionmaker,
            match,
            game_public_url=app.state.registry.public_url("game"),
            mail_domain=settings.mail_domain,
            wakeup=worker.wakeup if worker is not None else None,
        )

    return hook


@asynccontextmanager
async def summary_mail(app: FastAPI) -> AsyncIterator[None]:
    """Lifespan hook: the worker (unless switched off) and the match hook that feeds it."""
    settings: GameSettings = app.state.settings
    sender = SystemMailSender(
        clients=app.state.clients,
        tokens=ServiceTokenSource(
            settings=settings, clients=app.state.clients, scope=SYSTEM_MAIL_SCOPE
        ),
        deadline_seconds=settings.http_timeout_seconds,
    )
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
    )
    app.state.summary_mail_worker = worker
    hooks = getattr(app.state, "match_hooks", None)
    if hooks is not None:
        hooks.after_finished.append(send_match_summary(app))
    if not settings.summary_mail_worker:
        yield
        return
    worker.start()
    app.state.ready_checks["summary_mail_worker"] = worker.check_running
    try:
        yield
    finally:
        await worker.stop()
