"""Telemetry start-up: the per-player rate limiter (in Redis when configured, so every worker
counts against the same budget)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from VEZEPyCore.security.ratelimit import RateLimiter, make_rate_limiter
from VEZEPyGame.services.telemetry.metrics import TelemetryMetrics


@asynccontextmanager
async def start_telemetry(app: FastAPI) -> AsyncIterator[None]:
    limiter = make_rate_limiter(app.state.settings.redis_url)
    app.state.telemetry_limiter = limiter
    app.state.telemetry_metrics = TelemetryMetrics(app)
    try:
        yield
    finally:
        await limiter.close()


def _metrics(request: Request) -> TelemetryMetrics:
    metrics: TelemetryMetrics = request.app.state.telemetry_metrics
    return metrics


def _limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.telemetry_limiter
    return limiter


TelemetryLimiterDep = Annotated[RateLimiter, Depends(_limiter)]
TelemetryMetricsDep = Annotated[TelemetryMetrics, Depends(_metrics)]
