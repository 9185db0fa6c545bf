"""The outbound worker: runs in every Email process and works off `outbound_queue`.

Claiming is one conditional UPDATE, as in the portal's provisioning queue: a row that is
`queued` and due, or `sending` with a lease that ran out (its worker died), becomes `sending`
with a fresh random lease token and `leased_until` in the future. The statement is atomic on
SQLite and PostgreSQL (the second worker's UPDATE re-checks the condition), so one recipient is
never sent by two workers at once; only the lease holder records the outcome.

Per attempt: the message is DKIM-signed (RFC 6376), the routes resolved (overrides, smarthost,
MX, RFC 5321 5.1) and tried. 2yz -> sent; 4yz or no connection -> retried with exponential
back-off and jitter until the lifetime runs out; 5yz or expiry -> failed (the dead letter, with
its error) and an RFC 3464 DSN to the sender, unless the sender is the null path `<>`.
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
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyCore.queue import Backoff, WakeableLoop
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.db.models import OutboundMessage, OutboundTask
from VEZEPyEmail.services.delivery.local import deliver_local
from VEZEPyEmail.services.dkim.service import DkimKey, load_or_create_key
from VEZEPyEmail.services.outbound.dsn import FailedRecipient, build_dsn
from VEZEPyEmail.services.outbound.queue import enqueue_outbound, recipient_domain
from VEZEPyEmail.services.outbound.routing import RouteError, resolve_routes
from VEZEPyEmail.services.outbound.transport import Outcome, OutcomeKind, send_one

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
#: `(domain, sender, recipient, signed bytes) -> Outcome`: the network step, replaceable.
Sender = Callable[[str, str, str, bytes], Awaitable[Outcome]]

MAX_ERROR_LENGTH = 1000
DEFAULT_BATCH_SIZE = 16
RELEASE_TIMEOUT_SECONDS = 2.0


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ClaimedDelivery:
    id: int
    message_id: int
    envelope_from: str
    recipient: str
    domain: str
    attempts: int
    created_at: datetime
    expires_at: datetime
    lease_token: str


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class OutboundWorker(WakeableLoop):
    """Claims due deliveries, sends them and records the outcome; `run()` loops forever."""

    def __init__(
        self,
        *,
        state: Any,
        dkim_key: DkimKey,
        backoff: Backoff,
        lease_seconds: float,
        poll_seconds: float,
        batch_size: int = DEFAULT_BATCH_SIZE,
        clock: Clock = utcnow,
        rng: random.Random | None = None,
        send: Sender | None = None,
        metrics: CollectorRegistry | None = None,
    ) -> None:
        super().__init__(poll_seconds=poll_seconds, clock=clock, name="outbound-worker")
        self._state = state
        self._settings: EmailSettings = state.settings
        self._sessionmaker: async_sessionmaker[AsyncSession] = state.sessionmaker
        self._dkim_key = dkim_key
        self._backoff = backoff
        self._lease = timedelta(seconds=lease_seconds)
        self._batch_size = batch_size
        self._rng = rng or random.Random()
        self._send = send or self._send_smtp
        self._attempts = Counter(
            "veze_outbound_attempts",
            "Remote delivery attempts, by outcome (sent, temporary, permanent, interrupted)",
            ["outcome"],
            registry=metrics,
        )
        for kind in ("sent", "temporary", "permanent", "interrupted"):
            self._attempts.labels(kind)  # every series exists at 0, so alerts see the first

    # -- one pass ----------------------------------------------------------------------------

    async def process_due(self, *, now: datetime | None = None) -> int:
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
                    "outbound task %d: could not record the outcome", task.id, exc_info=result
                )
        return len(claimed)

    def _due(self, now: datetime) -> Any:
        return or_(
            and_(OutboundTask.status == "queued", OutboundTask.next_attempt_at <= now),
            and_(OutboundTask.status == "sending", OutboundTask.leased_until <= now),
        )

    async def claim_due(self, *, now: datetime | None = None) -> list[ClaimedDelivery]:
        """Take the lease on up to one batch of due deliveries (see the module docstring)."""
        now = now or self._clock()
        token = secrets.token_hex(16)
        due = (
            select(OutboundTask.id)
            .where(self._due(now))
            .order_by(OutboundTask.next_attempt_at, OutboundTask.id)
            .limit(self._batch_size)
        )
        statement = (
            update(OutboundTask)
            # Repeated outside the subquery: PostgreSQL re-checks it on a row another worker
            # updated while this statement waited for it.
            .where(OutboundTask.id.in_(due), self._due(now))
            .values(
                status="sending",
                lease_token=token,
                leased_until=now + self._lease,
                attempts=OutboundTask.attempts + 1,
                updated_at=now,
            )
            .returning(
                OutboundTask.id,
                OutboundTask.message_id,
                OutboundTask.envelope_from,
                OutboundTask.recipients,
                OutboundTask.domain,
                OutboundTask.attempts,
                OutboundTask.created_at,
                OutboundTask.expires_at,
            )
            .execution_options(synchronize_session=False)
        )
        async with self._sessionmaker.begin() as session:
            rows = (await session.execute(statement)).all()
        return [
            ClaimedDelivery(
                id=row.id,
                message_id=row.message_id,
                envelope_from=row.envelope_from,
                recipient=row.recipients[0],
                domain=row.domain,
                attempts=row.attempts,
                created_at=_aware(row.created_at),
                expires_at=_aware(row.expires_at),
                lease_token=token,
            )
            for row in sorted(rows, key=lambda row: row.id)
        ]

    async def next_due(self) -> datetime | None:
        async with self._sessionmaker() as session:
            queued = await session.scalar(
                select(func.min(OutboundTask.next_attempt_at)).where(
                    OutboundTask.status == "queued"
                )
            )
            leased = await session.scalar(
                select(func.min(OutboundTask.leased_until)).where(OutboundTask.status == "sending")
            )
        candidates = [_aware(value) for value in (queued, leased) if value is not None]
        return min(candidates) if candidates else None

    async def process(self, task: ClaimedDelivery) -> None:
        """One delivery attempt for a claimed task, and its outcome recorded."""
        try:
            raw = await self._load(task.message_id)
            outcome = await self._attempt(task, raw)
        except asyncio.CancelledError:
            await self._release(task)
            raise
        except Exception as exc:  # a bug must not stop the worker; recorded and retried
            log.exception("outbound task %d failed", task.id)
            raw = None
            outcome = Outcome("temporary", "4.3.0", f"x-local; {type(exc).__name__}: {exc}")
        self._attempts.labels(outcome.kind).inc()
        now = self._clock()
        if outcome.kind == "sent":
            log.info("delivered outbound task %d to %s", task.id, task.recipient)
            await self._finish(task, status="sent", error=None, next_attempt_at=now)
            return
        expired = outcome.kind == "temporary" and now >= task.expires_at
        if outcome.kind == "temporary" and not expired:
            delay = self._backoff.delay(task.attempts, self._rng)
            # The last try falls on the expiry time itself, then the message bounces.
            retry_at = min(now + timedelta(seconds=delay), task.expires_at)
            log.warning(
                "outbound task %d to %s failed (attempt %d), retrying in %.2fs: %s",
                task.id,
                task.recipient,
                task.attempts,
                (retry_at - now).total_seconds(),
                outcome.diagnostic,
            )
            await self._finish(
                task, status="queued", error=outcome.diagnostic, next_attempt_at=retry_at
            )
            return
        log.warning(
            "outbound task %d to %s failed for good%s: %s",
            task.id,
            task.recipient,
            " (expired)" if expired else "",
            outcome.diagnostic,
        )
        # The bounce first, then the record: a crash in between repeats the attempt, and the
        # DSN's fixed Message-ID keeps a repeated bounce out of the sender's mailbox.
        if raw is not None:
            await self._bounce(task, raw, FailedRecipient(task.recipient, outcome, expired))
        await self._finish(task, status="failed", error=outcome.diagnostic, next_attempt_at=now)

    # -- the steps ---------------------------------------------------------------------------

    async def _load(self, message_id: int) -> bytes:
        async with self._sessionmaker() as session:
            message = await session.get(OutboundMessage, message_id)
        if message is None:
            raise LookupError(f"outbound message {message_id} is gone")
        if message.blob_key is not None:
            raw: bytes = await self._state.blobs.get(message.blob_key)
            return raw
        if message.raw is None:
            raise LookupError(f"outbound message {message_id} has no content")
        return message.raw

    async def _attempt(self, task: ClaimedDelivery, raw: bytes) -> Outcome:
        # RFC 6376: signing is CPU work on the whole body; off the event loop.
        signed = await asyncio.to_thread(self._dkim_key.sign, raw)
        return await self._send(task.domain, task.envelope_from, task.recipient, signed)

    async def _send_smtp(self, domain: str, sender: str, recipient: str, data: bytes) -> Outcome:
        try:
            routes = await resolve_routes(domain, self._settings)
        except RouteError as exc:
            kind: OutcomeKind = "permanent" if exc.permanent else "temporary"
            return Outcome(kind, exc.status, f"x-local; {exc}")
        return await send_one(
            routes, sender=sender, recipient=recipient, data=data, settings=self._settings
        )

    async def _bounce(self, task: ClaimedDelivery, raw: bytes, failed: FailedRecipient) -> None:
        """Send a DSN to the original sender; never for a null sender (RFC 3464 2, 5321 4.5.5)."""
        sender = task.envelope_from.strip().strip("<>").strip()
        if not sender:
            log.info("outbound task %d: null sender, no bounce", task.id)
            return
        settings = self._settings
        dsn = build_dsn(
            reporting_mta=settings.smtp_hostname,
            mail_domain=settings.mail_domain,
            sender=sender,
            raw=raw,
            failed=failed,
            arrival_date=task.created_at,
            now=self._clock(),
            message_id=f"<dsn-{task.id}-{task.message_id}@{settings.smtp_hostname}>",
        )
        try:
            local = recipient_domain(sender) == settings.mail_domain.lower()
        except ValueError:
            log.warning("outbound task %d: sender %r is not an address", task.id, sender)
            return
        if local:
            delivered = await deliver_local(
                self._state, raw=dsn, envelope_from="", recipients=[sender]
            )
            if not delivered:
                log.warning("outbound task %d: bounce to unknown local %s dropped", task.id, sender)
        else:
            await enqueue_outbound(self._state, raw=dsn, envelope_from="", recipients=[sender])

    async def _finish(
        self,
        task: ClaimedDelivery,
        *,
        status: str,
        error: str | None,
        next_attempt_at: datetime,
    ) -> bool:
        """Record an outcome and drop the lease, if this worker still holds it."""
        now = self._clock()
        statement = (
            update(OutboundTask)
            .where(OutboundTask.id == task.id, OutboundTask.lease_token == task.lease_token)
            .values(
                status=status,
                last_error=error[:MAX_ERROR_LENGTH] if error is not None else None,
                next_attempt_at=next_attempt_at,
                lease_token=None,
                leased_until=None,
                updated_at=now,
                finished_at=now if status in ("sent", "failed") else None,
            )
            .execution_options(synchronize_session=False)
        )
        async with self._sessionmaker.begin() as session:
            result = await session.execute(statement)
        held = bool(getattr(result, "rowcount", 0))
        if not held:
            log.warning("outbound task %d: lease lost, another worker owns it", task.id)
        return held

    async def _release(self, task: ClaimedDelivery) -> None:
        """Hand an interrupted delivery back at once instead of waiting for its lease."""
        self._attempts.labels("interrupted").inc()
        try:
            async with asyncio.timeout(RELEASE_TIMEOUT_SECONDS):
                await asyncio.shield(
                    self._finish(
                        task,
                        status="queued",
                        error="interrupted: the server stopped during delivery; will retry",
                        next_attempt_at=self._clock(),
                    )
                )
        except Exception:  # best effort: the lease still runs out on its own
            log.warning("could not release the lease of outbound task %d", task.id)


def worker_for_app(
    app: FastAPI, *, send: Sender | None = None, metrics: CollectorRegistry | None = None
) -> OutboundWorker:
    """A worker wired to the app's state; `metrics` defaults to the app's registry."""
    settings: EmailSettings = app.state.settings
    return OutboundWorker(
        state=app.state,
        dkim_key=app.state.dkim_key,
        backoff=Backoff(
            initial_seconds=settings.outbound_backoff_seconds,
            max_seconds=settings.outbound_max_backoff_seconds,
        ),
        lease_seconds=settings.outbound_lease_seconds,
        poll_seconds=settings.outbound_poll_seconds,
        send=send,
        metrics=metrics if metrics is not None else app.state.metrics_registry,
    )


@asynccontextmanager
async def outbound_worker(app: FastAPI) -> AsyncIterator[None]:
    """Lifespan hook: load (or create) the DKIM key, start the worker unless disabled."""
    settings: EmailSettings = app.state.settings
    app.state.dkim_key = await asyncio.to_thread(load_or_create_key, settings)
    worker = worker_for_app(app)
    app.state.outbound_worker = worker
    if not settings.outbound_worker:
        yield
        return
    worker.start()
    app.state.ready_checks["outbound_worker"] = worker.check_running
    try:
        yield
    finally:
        await worker.stop()
