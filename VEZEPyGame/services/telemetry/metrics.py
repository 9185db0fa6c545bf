"""Telemetry metrics: events stored by type, batches refused by reason, flags raised by rule."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import Counter

from VEZEPyGame.services.telemetry.rules import RULES

EVENT_TYPES = ("move", "queue_join", "queue_leave", "match_abandon", "page_view", "client_error")
REFUSALS = ("too_large", "rate_limited", "invalid", "too_many_events")


class TelemetryMetrics:
    def __init__(self, app: FastAPI) -> None:
        registry = app.state.metrics_registry
        self.events = Counter(
            "veze_telemetry_events",
            "Client telemetry events stored, by type.",
            ["type"],
            registry=registry,
        )
        self.refused = Counter(
            "veze_telemetry_batches_refused",
            "Telemetry batches refused, by reason (too_large, rate_limited, invalid, "
            "too_many_events).",
            ["reason"],
            registry=registry,
        )
        self.flags = Counter(
            "veze_fair_play_flags",
            "Fair-play flags raised (new ones only), by rule.",
            ["rule"],
            registry=registry,
        )
        for event_type in EVENT_TYPES:
            self.events.labels(event_type)
        for reason in REFUSALS:
            self.refused.labels(reason)
        for rule in RULES:
            self.flags.labels(rule)
