"""The outbound worker: runs in every Email process and works off `outbound_queue`.

It is VEZEPyCore's leased-queue worker (VEZEPyCore/queue/worker.py): a row that is `queued` and
due, or `sending` with a lease that ran out (its worker died), is claimed with a fresh lease;
only the lease holder records the outcome; with Redis the rows are dispatched over a stream.

Per attempt: the message is DKIM-signed (RFC 6376), the routes resolved (overrides, smarthost,
MX, RFC 5321 5.1) and tried. 2yz -> sent; 4yz or no connection -> retried with exponential
back-off and jitter until the lifetime runs out; 5yz or expiry -> failed (the dead letter, with
its error) and an RFC 3464 DSN to the sender, unless the sender is the null path `<>`.

Rows for this server's own domain (Sieve redirects and vacation replies to local users, queued
in the transaction of the delivery that caused them) are filed here by the same worker.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyCore.queue import (
    Backoff,
    Failure,
    GiveUp,
    Job,
    QueueWorker,
    Retry,
    StreamDispatch,
    stream_dispatch,
)
from VEZEPyCore.queue.worker import Outcome as QueueOutcome
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.db.models import OutboundMessage
from VEZEPyEmail.services.delivery.local import (
    DeliveryRefused,
    deliver_local,
    local_mailbox_exists,
)
from VEZEPyEmail.services.dkim.service import DkimKey, load_or_create_key
from VEZEPyEmail.services.outbound.dsn import FailedRecipient, build_dsn
from VEZEPyEmail.services.outbound.queue import OUTBOUND, enqueue_outbound, recipient_domain
from VEZEPyEmail.services.outbound.routing import RouteError, resolve_routes
from VEZEPyEmail.services.outbound.transport import Outcome, OutcomeKind, send_one

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
#: `(domain, sender, recipient, signed bytes) -> Outcome`: the network step, replaceable.
Sender = Callable[[str, str, str, bytes], Awaitable[Outcome]]

DEFAULT_BATCH_SIZE = 16
INTERRUPTED = "interrupted: the server stopped during delivery; will retry"


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class TemporaryFailure(Retry):
    """A 4yz answer or no connection: retried until the message's lifetime runs out."""

    def __init__(self, outcome: Outcome, raw: bytes) -> None:
        super().__init__(outcome.diagnostic)
        self.outcome, self.raw = outcome, raw


class PermanentFailure(GiveUp):
    """A 5yz answer: bounced at once."""

    def __init__(self, outcome: Outcome, raw: bytes) -> None:
        super().__init__(outcome.diagnostic)
        self.outcome, self.raw = outcome, raw


class OutboundWorker(QueueWorker):
    """The shared queue worker, delivering each claimed recipient; `run()` loops forever."""

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
        dispatch: StreamDispatch | None = None,
    ) -> None:
        self._state = state
        self._settings: EmailSettings = state.settings
        self._dkim_key = dkim_key
        self._send = send or self._send_smtp
        self._attempts = Counter(
            "veze_outbound_attempts",
            "Remote delivery attempts, by outcome (sent, temporary, permanent, interrupted)",
            ["outcome"],
            registry=metrics,
        )
        for kind in ("sent", "temporary", "permanent", "interrupted"):
            self._attempts.labels(kind)  # every series exists at 0, so alerts see the first
        sessionmaker: async_sessionmaker[AsyncSession] = state.sessionmaker
        super().__init__(
            table=OUTBOUND,
            sessionmaker=sessionmaker,
            handler=self._deliver,
            backoff=backoff,
            lease_seconds=lease_seconds,
            poll_seconds=poll_seconds,
            batch_size=batch_size,
            clock=clock,
            rng=rng,
            dispatch=dispatch,
            on_dead=self._bounce,
            on_outcome=self._count_interrupted,
            interrupted=INTERRUPTED,
            label="outbound worker",
        )

    # -- one delivery ------------------------------------------------------------------------

    async def _deliver(self, job: Job) -> None:
        task = job.row
        try:
            raw = await self._load(task.message_id)
            if task.domain == self._settings.mail_domain.lower():
                outcome = await self._file_here(task.envelope_from, task.recipients[0], raw)
            else:
                outcome = await self._attempt(
                    task.domain, task.envelope_from, task.recipients[0], raw
                )
        except Exception as exc:  # a bug must not stop the worker; recorded and retried
            log.exception("outbound task %d failed", job.id)
            self._attempts.labels("temporary").inc()
            raise Retry(f"x-local; {type(exc).__name__}: {exc}") from exc
        self._attempts.labels(outcome.kind).inc()
        if outcome.kind == "sent":
            log.info("delivered outbound task %d to %s", job.id, task.recipients[0])
            return
        if outcome.kind == "permanent":
            raise PermanentFailure(outcome, raw)
        raise TemporaryFailure(outcome, raw)

    def _count_interrupted(self, _job: Job, outcome: QueueOutcome) -> None:
        if outcome == "interrupted":
            self._attempts.labels("interrupted").inc()

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

    async def _file_here(self, sender: str, recipient: str, raw: bytes) -> Outcome:
        """A message this server sends to one of its own mailboxes (a Sieve redirect or
        vacation reply): filed, not sent over SMTP. A retry after a crash between the filing
        and the queue's record of it is filed once (deliver_local skips a Message-ID the
        mailbox already holds)."""
        if not await local_mailbox_exists(self._state, recipient):
            return Outcome("permanent", "5.1.1", f"x-local; no mailbox {recipient}")
        try:
            await deliver_local(
                self._state,
                raw=raw,
                envelope_from=sender,
                recipients=[recipient],
                prepend_headers=[("Return-Path", f"<{sender}>")],
            )
        except DeliveryRefused as exc:
            return Outcome("permanent", "5.3.4", f"x-local; {exc}")
        return Outcome("sent", "2.0.0", "x-local; filed here")

    async def _attempt(self, domain: str, sender: str, recipient: str, raw: bytes) -> Outcome:
        # RFC 6376: signing is CPU work on the whole body; off the event loop.
        signed = await asyncio.to_thread(self._dkim_key.sign, raw)
        return await self._send(domain, sender, recipient, signed)

    async def _send_smtp(self, domain: str, sender: str, recipient: str, data: bytes) -> Outcome:
        try:
            routes = await resolve_routes(domain, self._settings)
        except RouteError as exc:
            kind: OutcomeKind = "permanent" if exc.permanent else "temporary"
            return Outcome(kind, exc.status, f"x-local; {exc}")
        return await send_one(
            routes, sender=sender, recipient=recipient, data=data, settings=self._settings
        )

    async def _bounce(self, job: Job, failure: Failure) -> None:
        """The dead-letter step: a DSN to the original sender, before the row is marked
        failed; never for a null sender (RFC 3464 2, 5321 4.5.5)."""
        error = failure.error
        if not isinstance(error, TemporaryFailure | PermanentFailure):
            return  # no answer to report (the message could not even be loaded)
        task = job.row
        recipient = task.recipients[0]
        failed = FailedRecipient(recipient, error.outcome, failure.expired)
        sender = task.envelope_from.strip().strip("<>").strip()
        if not sender:
            log.info("outbound task %d: null sender, no bounce", job.id)
            return
        settings = self._settings
        dsn = build_dsn(
            reporting_mta=settings.smtp_hostname,
            mail_domain=settings.mail_domain,
            sender=sender,
            raw=error.raw,
            failed=failed,
            arrival_date=_aware(task.created_at),
            now=self._clock(),
            # Fixed per task: a bounce repeated after a crash is filed once.
            message_id=f"<dsn-{job.id}-{task.message_id}@{settings.smtp_hostname}>",
        )
        try:
            local = recipient_domain(sender) == settings.mail_domain.lower()
        except ValueError:
            log.warning("outbound task %d: sender %r is not an address", job.id, sender)
            return
        if local:
            delivered = await deliver_local(
                self._state, raw=dsn, envelope_from="", recipients=[sender]
            )
            if not delivered:
                log.warning("outbound task %d: bounce to unknown local %s dropped", job.id, sender)
        else:
            await enqueue_outbound(
                self._state,
                raw=dsn,
                envelope_from="",
                recipients=[sender],
                origin=f"dsn:{job.id}",  # a DSN repeated after a crash is queued once
            )


def worker_for_app(
    app: FastAPI,
    *,
    send: Sender | None = None,
    metrics: CollectorRegistry | None = None,
    dispatch: StreamDispatch | None = None,
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
        dispatch=dispatch,
    )


@asynccontextmanager
async def outbound_worker(app: FastAPI) -> AsyncIterator[None]:
    """Lifespan hook: load (or create) the DKIM key, start the worker unless disabled."""
    settings: EmailSettings = app.state.settings
    app.state.dkim_key = await asyncio.to_thread(load_or_create_key, settings)
    # With Redis the stream carries new rows to whichever Email process is free; a process
    # with its worker off still publishes to it.
    dispatch = stream_dispatch(settings, OUTBOUND.name)
    worker = worker_for_app(app, dispatch=dispatch)
    app.state.outbound_worker = worker
    try:
        if settings.outbound_worker:
            worker.start()
            app.state.ready_checks["outbound_worker"] = worker.check_running
        yield
    finally:
        await worker.stop()
        if dispatch is not None:
            await dispatch.close()
