"""The mail platform's Prometheus metrics: SMTP sessions and replies, live clients, the queue.

Counters and gauges are registered on the app's own registry (three services share a test
process). Every label value is from a fixed set and is initialised at start, so a series exists
(at 0) before its first event: `rate()` and the alerts then see the first increment too.

The outbound queue's depth and oldest age are read from the database when `/metrics` is
scraped (VEZEPyCore.observability.scrape): several workers and replicas share one queue.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import func, select

from VEZEPyCore.observability.scrape import scrape_hooks
from VEZEPyEmail.db import intake as intake_db
from VEZEPyEmail.db.models import OutboundTask

LISTENERS = ("mx", "submission", "smtps")
#: Enhanced status code (RFC 3463) of a refusing reply -> the reason label. Replies to protocol
#: mistakes (5.5.x syntax and sequence errors) are not refusals of mail and are not counted.
REFUSAL_REASONS: tuple[tuple[str, str], ...] = (
    ("550 5.1.1", "unknown_recipient"),
    ("550 5.7.1", "relay_denied"),
    ("452 4.5.3", "too_many_recipients"),
    ("552 5.3.4", "too_large"),
    ("553 5.7.1", "sender_not_owned"),
    ("554 5.6.0", "content_refused"),
    ("451 4.3.0", "temporary_failure"),
    ("530 5.7.0", "authentication_required"),
)
OTHER_REFUSAL = "other"
REFUSAL_LABELS = (*dict.fromkeys(reason for _, reason in REFUSAL_REASONS), OTHER_REFUSAL)
#: The reply to a stored message (handlers.py: "250 2.0.0 OK queued as <id>").
ACCEPTED_REPLY = "250 2.0.0 OK queued"
QUEUE_STATES = ("queued", "sending")


def refusal_reason(reply: str) -> str | None:
    """The reason label of a reply that refuses a sender, recipient or message, else None."""
    code = reply[:3]
    if not ((code.isdigit() and code[:2] in {"45", "55"}) or code == "530"):
        return None
    for prefix, reason in REFUSAL_REASONS:
        if reply.startswith(prefix):
            return reason
    return OTHER_REFUSAL


class EmailMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.smtp_sessions = Counter(
            "veze_smtp_sessions",
            "SMTP connections accepted, by listener (mx, submission, smtps).",
            ["listener"],
            registry=registry,
        )
        self.smtp_sessions_active = Gauge(
            "veze_smtp_sessions_active",
            "SMTP connections open now, by listener.",
            ["listener"],
            registry=registry,
        )
        self.smtp_accepted = Counter(
            "veze_smtp_messages_accepted",
            "Messages stored or queued after DATA (the 250 reply), by listener.",
            ["listener"],
            registry=registry,
        )
        self.smtp_refused = Counter(
            "veze_smtp_messages_refused",
            "Refusing replies to a sender, recipient or message (one per reply), by listener "
            "and reason.",
            ["listener", "reason"],
            registry=registry,
        )
        self.smtp_auth = Counter(
            "veze_smtp_auth_attempts",
            "SMTP AUTH attempts (RFC 4954) by listener and outcome (success, failure).",
            ["listener", "outcome"],
            registry=registry,
        )
        self.sse_clients = Gauge(
            "veze_sse_clients_connected",
            "Browsers and clients holding the live mail stream (GET /api/events) open.",
            registry=registry,
        )
        self.outbound_depth = Gauge(
            "veze_outbound_queue_depth",
            "Remote deliveries waiting (queued) or in flight (sending), read at scrape time.",
            ["status"],
            registry=registry,
        )
        self.outbound_oldest_age = Gauge(
            "veze_outbound_queue_oldest_age_seconds",
            "Age of the oldest undelivered remote delivery (0 when the queue is empty).",
            registry=registry,
        )
        self.intake_waiting = Gauge(
            "veze_smtp_intake_waiting",
            "Messages the MX accepted that wait for delivery (smtp_intake), read at scrape time.",
            registry=registry,
        )
        self.intake_stuck = Gauge(
            "veze_smtp_intake_stuck",
            "Accepted messages whose delivery failed EMAIL_INTAKE_MAX_ATTEMPTS times.",
            registry=registry,
        )
        self.intake_oldest_age = Gauge(
            "veze_smtp_intake_oldest_age_seconds",
            "Age of the oldest accepted, undelivered message (0 when none waits).",
            registry=registry,
        )
        for listener in LISTENERS:
            self.smtp_sessions.labels(listener)
            self.smtp_sessions_active.labels(listener)
            self.smtp_accepted.labels(listener)
            for reason in REFUSAL_LABELS:
                self.smtp_refused.labels(listener, reason)
            for outcome in ("success", "failure"):
                self.smtp_auth.labels(listener, outcome)
        for status in QUEUE_STATES:
            self.outbound_depth.labels(status)

    # -- SMTP (called by services/smtp/protocol.py) ------------------------------------------

    def session_opened(self, listener: str) -> None:
        self.smtp_sessions.labels(listener).inc()
        self.smtp_sessions_active.labels(listener).inc()

    def session_closed(self, listener: str) -> None:
        self.smtp_sessions_active.labels(listener).dec()

    def reply(self, listener: str, reply: str) -> None:
        """Count one reply the server sent (after its enhanced-status rewrite)."""
        if reply.startswith(ACCEPTED_REPLY):
            self.smtp_accepted.labels(listener).inc()
        elif reply.startswith("235"):
            self.smtp_auth.labels(listener, "success").inc()
        elif reply.startswith("535"):
            self.smtp_auth.labels(listener, "failure").inc()
        else:
            reason = refusal_reason(reply)
            if reason is not None:
                self.smtp_refused.labels(listener, reason).inc()

    # -- the outbound queue, at scrape time --------------------------------------------------

    async def collect_outbound_queue(self, app: FastAPI) -> None:
        statement = select(
            OutboundTask.status, func.count(), func.min(OutboundTask.created_at)
        ).where(OutboundTask.status.in_(QUEUE_STATES))
        async with app.state.sessionmaker() as db:
            rows = (await db.execute(statement.group_by(OutboundTask.status))).all()
        depth = dict.fromkeys(QUEUE_STATES, 0)
        oldest: datetime | None = None
        for status, count, created in rows:
            depth[status] = int(count)
            if created is not None:
                created = created if created.tzinfo else created.replace(tzinfo=UTC)
                oldest = created if oldest is None else min(oldest, created)
        for status, count in depth.items():
            self.outbound_depth.labels(status).set(count)
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest is not None else 0.0
        self.outbound_oldest_age.set(max(age, 0.0))

    async def collect_intake(self, app: FastAPI) -> None:
        max_attempts = int(app.state.settings.intake_max_attempts)
        async with app.state.sessionmaker() as db:
            backlog = await intake_db.backlog(db, max_attempts=max_attempts)
        self.intake_waiting.set(backlog.waiting)
        self.intake_stuck.set(backlog.stuck)
        oldest = backlog.oldest_accepted_at
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest is not None else 0.0
        self.intake_oldest_age.set(max(age, 0.0))


def install_email_metrics(app: FastAPI) -> EmailMetrics:
    """Create the metrics on `app.state.email_metrics` and register the queue collection."""
    metrics = EmailMetrics(app.state.metrics_registry)
    app.state.email_metrics = metrics

    async def collect() -> None:
        if getattr(app.state, "sessionmaker", None) is not None:
            await metrics.collect_outbound_queue(app)
            await metrics.collect_intake(app)

    scrape_hooks(app).add("outbound_queue", collect)
    return metrics


def email_metrics(state: object) -> EmailMetrics | None:
    """The metrics of an app state, if installed (SMTP objects only hold the state)."""
    metrics = getattr(state, "email_metrics", None)
    return metrics if isinstance(metrics, EmailMetrics) else None
