"""`build_service_app`: the FastAPI object every service starts from."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry
from starlette.types import Lifespan

from VEZEPyCore.errors import install_error_handlers
from VEZEPyCore.observability.logs import install_token_redaction
from VEZEPyCore.observability.metrics import HttpMetrics, PrometheusMiddleware
from VEZEPyCore.observability.request_id import RequestIdMiddleware
from VEZEPyCore.observability.tracing import instrument_app
from VEZEPyCore.settings import CoreSettings
from VEZEPyCore.web import health
from VEZEPyCore.web.templates import CORE_STATIC


def build_service_app(
    *,
    name: str,
    title: str,
    version: str,
    settings: CoreSettings,
    lifespan: Lifespan[FastAPI],
    static_dir: Path | None = None,
) -> FastAPI:
    app = FastAPI(title=title, version=version, lifespan=lifespan)
    app.state.service_name = name
    app.state.settings = settings
    app.state.ready_checks = {}
    app.state.metrics_registry = CollectorRegistry(auto_describe=True)
    app.state.http_metrics = HttpMetrics(app.state.metrics_registry)
    install_error_handlers(app)
    install_token_redaction()
    app.include_router(health.router)
    app.mount("/static/core", StaticFiles(directory=CORE_STATIC), name="core-static")
    if static_dir is not None and static_dir.is_dir():
        app.mount("/static", StaticFiles(directory=static_dir), name="static")
    app.state.tracer_provider = instrument_app(app, name, settings)
    # Added last so it runs first: the request id is set before anything logs.
    app.add_middleware(PrometheusMiddleware, metrics=app.state.http_metrics)
    app.add_middleware(RequestIdMiddleware)
    return app
