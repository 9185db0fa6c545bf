"""The portal's Prometheus metrics: log-ins, tokens, provisioning backlog, live connections
(the copilot's WebSockets and the header bell's notification streams).

Registered on the app's own registry; every label value comes from a fixed set (anything else
is counted as `other`, never copied from the request) and is initialised at start, so series
exist at 0 and `rate()` sees the first event. The provisioning backlog is read from the
database at scrape time (VEZEPyCore.observability.scrape): all portal workers share it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import case, func, select

from VEZEPyCore.observability.scrape import scrape_hooks
from VEZEPyUniQVerse.db.models.provisioning import ProvisioningTask

#: Log-in steps and their outcomes (the audit log's `login.*` actions, as counters).
LOGIN_OUTCOMES: dict[str, tuple[str, ...]] = {
    "password": ("success", "bad_password", "unknown_handle", "disabled", "locked", "throttled"),
    "second_factor": ("success", "bad_totp", "bad_recovery_code", "throttled"),
}
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
#: RFC 6749 section 5.2 error codes the token endpoint answers with.
TOKEN_ERRORS = (
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "slow_down",
)
OTHER = "other"
PROVISIONING_TARGETS = ("email", "game")
#: The portal's Server-Sent Events streams (the `stream` label, as Game labels its own).
SSE_STREAMS = ("notifications",)


def _known(value: str, allowed: tuple[str, ...]) -> str:
    return value if value in allowed else OTHER


class PortalMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.logins = Counter(
            "veze_login_attempts",
            "Web log-in attempts by step (password, second_factor) and outcome.",
            ["step", "outcome"],
            registry=registry,
        )
        self.tokens_issued = Counter(
            "veze_tokens_issued",
            "Tokens issued by the token endpoint, by grant type.",
            ["grant_type"],
            registry=registry,
        )
        self.tokens_refused = Counter(
            "veze_token_requests_refused",
            "Token requests refused, by grant type and OAuth error (RFC 6749 section 5.2).",
            ["grant_type", "error"],
            registry=registry,
        )
        self.websocket_clients = Gauge(
            "veze_websocket_clients_connected",
            "WebSocket connections open now, by endpoint.",
            ["endpoint"],
            registry=registry,
        )
        self.sse_clients = Gauge(
            "veze_sse_clients_connected",
            "Live event streams (SSE) open now, by stream (notifications: the header bell).",
            ["stream"],
            registry=registry,
        )
        self.provisioning_pending = Gauge(
            "veze_provisioning_tasks_pending",
            "Provisioning tasks not done yet, by target (read at scrape time).",
            ["target"],
            registry=registry,
        )
        self.provisioning_retrying = Gauge(
            "veze_provisioning_tasks_retrying",
            "Pending provisioning tasks that failed at least once and wait for a retry.",
            ["target"],
            registry=registry,
        )
        self.provisioning_oldest_age = Gauge(
            "veze_provisioning_oldest_pending_age_seconds",
            "Age of the oldest pending provisioning task, by target (0 when none).",
            ["target"],
            registry=registry,
        )
        for step, outcomes in LOGIN_OUTCOMES.items():
            for outcome in outcomes:
                self.logins.labels(step, outcome)
        for grant in (*GRANT_TYPES, OTHER):
            self.tokens_issued.labels(grant)
            for error in (*TOKEN_ERRORS, OTHER):
                self.tokens_refused.labels(grant, error)
        self.websocket_clients.labels("/ws/copilot")
        for stream in SSE_STREAMS:
            self.sse_clients.labels(stream)
        for target in PROVISIONING_TARGETS:
            self.provisioning_pending.labels(target)
            self.provisioning_retrying.labels(target)
            self.provisioning_oldest_age.labels(target)

    def login(self, step: str, outcome: str) -> None:
        self.logins.labels(step, _known(outcome, LOGIN_OUTCOMES[step])).inc()

    def token_issued(self, grant_type: str) -> None:
        self.tokens_issued.labels(_known(grant_type, GRANT_TYPES)).inc()

    def token_refused(self, grant_type: str, error: str) -> None:
        self.tokens_refused.labels(
            _known(grant_type, GRANT_TYPES), _known(error, TOKEN_ERRORS)
        ).inc()

    async def counted_stream(
        self, stream: str, events: AsyncGenerator[dict[str, Any], None]
    ) -> AsyncIterator[dict[str, Any]]:
        """`events`, counted in `veze_sse_clients_connected{stream=...}` while the client stays."""
        connected = self.sse_clients.labels(_known(stream, SSE_STREAMS))
        connected.inc()
        try:
            # aclosing: a client that leaves closes the inner stream (its hub place) at once.
            async with aclosing(events) as inner:
                async for event in inner:
                    yield event
        finally:
            connected.dec()

    async def collect_provisioning(self, app: FastAPI) -> None:
        task = ProvisioningTask
        statement = (
            select(
                task.target,
                func.count(),
                func.sum(case((task.attempts > 0, 1), else_=0)),
                func.min(task.created_at),
            )
            .where(task.status == "pending")
            .group_by(task.target)
        )
        async with app.state.sessionmaker() as db:
            rows = (await db.execute(statement)).all()
        seen = dict.fromkeys(PROVISIONING_TARGETS, (0, 0, 0.0))
        now = datetime.now(UTC)
        for target, pending, retrying, oldest in rows:
            age = 0.0
            if oldest is not None:
                oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
                age = max((now - oldest).total_seconds(), 0.0)
            seen[target] = (int(pending), int(retrying or 0), age)
        for target, (pending, retrying, age) in seen.items():
            self.provisioning_pending.labels(target).set(pending)
            self.provisioning_retrying.labels(target).set(retrying)
            self.provisioning_oldest_age.labels(target).set(age)


def install_portal_metrics(app: FastAPI) -> PortalMetrics:
    """Create the metrics on `app.state.portal_metrics` and register the backlog collection."""
    metrics = PortalMetrics(app.state.metrics_registry)
    app.state.portal_metrics = metrics

    async def collect() -> None:
        if getattr(app.state, "sessionmaker", None) is not None:
            await metrics.collect_provisioning(app)

    scrape_hooks(app).add("provisioning_queue", collect)
    return metrics


def portal_metrics(app: FastAPI) -> PortalMetrics:
    metrics: PortalMetrics = app.state.portal_metrics
    return metrics
