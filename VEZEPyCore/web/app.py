"""`create_service_app`: every service's FastAPI object, built the same way.

A service folder has the same shape everywhere (`db/alembic`, `ui/templates`, `ui/static`), so
a service only says its name, audience, database and routers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp

from VEZEPyCore import __version__
from VEZEPyCore.errors import install_error_handlers
from VEZEPyCore.observability.logs import install_token_redaction
from VEZEPyCore.observability.metrics import HttpMetrics, PrometheusMiddleware
from VEZEPyCore.observability.request_id import RequestIdMiddleware
from VEZEPyCore.observability.tracing import instrument_app
from VEZEPyCore.security.csrf import CsrfCookieMiddleware, csrf_cookie_name
from VEZEPyCore.settings import CoreSettings
from VEZEPyCore.web import health
from VEZEPyCore.web.body_limit import JsonContentTooLarge
from VEZEPyCore.web.openapi import document_refusals
from VEZEPyCore.web.runtime import service_runtime
from VEZEPyCore.web.templates import CORE_STATIC, service_templates

#: Extra start-up for one service, run inside the shared runtime (its state is ready).
StartupHook = Callable[[FastAPI], AbstractAsyncContextManager[None]]


class ServiceApp(FastAPI):
    """FastAPI whose outermost layer puts the body limiter's own 413 in the JSON error shape."""

    def build_middleware_stack(self) -> ASGIApp:
        # Starlette's limiter answers a declared Content-Length over the limit by itself, in
        # plain text and outside the exception handlers; only a layer outside it can reshape.
        # It goes just inside ServerErrorMiddleware, which must stay outermost: OpenTelemetry's
        # FastAPI instrumentation refuses (and traces nothing) when it finds another layer.
        stack = super().build_middleware_stack()
        if isinstance(stack, ServerErrorMiddleware):
            stack.app = JsonContentTooLarge(stack.app)
            return stack
        return JsonContentTooLarge(stack)


def create_service_app(
    *,
    name: str,
    title: str,
    settings: CoreSettings,
    audience: str,
    db_url: str,
    package_dir: Path,
    routers: Sequence[APIRouter],
    on_startup: StartupHook | None = None,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with (
            service_runtime(
                app,
                settings=settings,
                audience=audience,
                db_url=db_url,
                migrations=package_dir / "db" / "alembic",
            ),
            on_startup(app) if on_startup is not None else nullcontext(),
        ):
            yield

    app = ServiceApp(
        title=title,
        version=__version__,
        lifespan=lifespan,
        # Counted as the body streams in, so an oversized one is refused with 413 before it
        # is read whole; routers that take larger bodies name their own ceiling.
        max_body_size=settings.max_body_bytes,
    )
    app.state.service_name = name
    app.state.settings = settings
    app.state.ready_checks = {}
    app.state.metrics_registry = CollectorRegistry(auto_describe=True)
    app.state.http_metrics = HttpMetrics(app.state.metrics_registry)
    app.state.templates = service_templates(package_dir / "ui" / "templates")
    install_error_handlers(app)
    install_token_redaction()
    app.include_router(health.router)
    app.mount("/static/core", StaticFiles(directory=CORE_STATIC), name="core-static")
    static_dir = package_dir / "ui" / "static"
    if static_dir.is_dir():
        app.mount("/static", StaticFiles(directory=static_dir), name="static")
    for router in routers:
        app.include_router(router)
    document_refusals(app)
    app.state.tracer_provider = instrument_app(app, name, settings)
    app.state.csrf_cookie_name = csrf_cookie_name(name)
    app.add_middleware(CsrfCookieMiddleware, service=name, secure=settings.secure_cookies)
    # Added last so it runs first: the request id is set before anything logs.
    app.add_middleware(PrometheusMiddleware, metrics=app.state.http_metrics)
    app.add_middleware(RequestIdMiddleware)
    return app
