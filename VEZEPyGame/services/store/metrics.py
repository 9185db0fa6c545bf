"""Store metrics: the payment provider's webhook deliveries, by outcome.

On the app's own registry; every label value exists (at 0) from start-up, so `rate()` sees the
first event. A rise in `bad_signature` or `stale_timestamp` means a wrong secret or clock (or
someone probing); `replayed_event` is a provider retrying what we already applied.
"""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import Counter

WEBHOOK_OUTCOMES = (
    "completed",
    "already_completed",
    "failed",
    "refunded",
    "already_refunded",
    "ignored",
    "bad_signature",
    "stale_timestamp",
    "replayed_event",
    "rejected",
)


class StoreMetrics:
    def __init__(self, app: FastAPI) -> None:
        self.webhook_events = Counter(
            "veze_store_webhook_events",
            "Payment provider webhook deliveries, by outcome.",
            ["outcome"],
            registry=app.state.metrics_registry,
        )
        for outcome in WEBHOOK_OUTCOMES:
            self.webhook_events.labels(outcome)

    def webhook(self, outcome: str) -> None:
        self.webhook_events.labels(outcome if outcome in WEBHOOK_OUTCOMES else "rejected").inc()
