"""httpx clients for calls to other services, with timeouts on every call.

A service can be reached over the network (its resolved URL) or, for tests and single-process
dev, in-process through `ASGITransport` when the app is mounted or `<NAME>_ASGI=1` is set.
"""

from __future__ import annotations

import importlib
from contextlib import AsyncExitStack

import httpx
from opentelemetry.sdk.trace import TracerProvider
from starlette.types import ASGIApp

from VEZEPyCore.observability.request_id import REQUEST_ID_HEADER, current_request_id
from VEZEPyCore.observability.tracing import instrument_httpx_client
from VEZEPyCore.services.registry import ServiceRegistry
from VEZEPyCore.settings import CoreSettings


def default_timeout(settings: CoreSettings) -> httpx.Timeout:
    return httpx.Timeout(
        settings.http_timeout_seconds, connect=min(2.0, settings.http_timeout_seconds)
    )


class ServiceClients:
    """One pooled client per service, created on first use and closed with the app."""

    def __init__(
        self,
        settings: CoreSettings,
        registry: ServiceRegistry,
        *,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self._settings = settings
        self._tracer_provider = tracer_provider
        self._registry = registry
        self._mounted: dict[str, ASGIApp] = {}
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._stack = AsyncExitStack()

    def mount(self, name: str, app: ASGIApp) -> None:
        """Route calls to `name` to an in-process app (whose lifespan the caller runs)."""
        self._mounted[name] = app
        self._clients.pop(name, None)

    async def client(self, name: str) -> httpx.AsyncClient:
        existing = self._clients.get(name)
        if existing is not None:
            return existing
        entry = self._registry.get(name)
        app = self._mounted.get(name)
        if app is None and name in self._settings.asgi_services:
            if not entry.asgi_factory:
                raise LookupError(f"service {name!r} has no asgi_factory for in-process calls")
            app = await self._start_in_process(entry.asgi_factory)
            self._mounted[name] = app
        if app is not None:
            # An in-process crash must look like it would over the network: a 500 response.
            transport: httpx.AsyncBaseTransport = httpx.ASGITransport(
                app=app, raise_app_exceptions=False
            )
            base_url = f"http://{name}.in-process"
        else:
            transport = httpx.AsyncHTTPTransport(retries=1)
            base_url = entry.url
        client = httpx.AsyncClient(
            base_url=base_url,
            transport=transport,
            timeout=default_timeout(self._settings),
            event_hooks={"request": [_forward_request_id]},
        )
        instrument_httpx_client(client, self._tracer_provider)
        self._stack.push_async_callback(client.aclose)
        self._clients[name] = client
        return client

    async def _start_in_process(self, factory_path: str) -> ASGIApp:
        module_name, _, attribute = factory_path.partition(":")
        app = getattr(importlib.import_module(module_name), attribute)()
        # ASGITransport sends no lifespan events; run the app's own so its DB is ready.
        await self._stack.enter_async_context(app.router.lifespan_context(app))
        return app  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        self._clients.clear()
        await self._stack.aclose()


async def _forward_request_id(request: httpx.Request) -> None:
    """One request id across every service a request touches, for following it in the logs."""
    request_id = current_request_id.get()
    if request_id and REQUEST_ID_HEADER not in request.headers:
        request.headers[REQUEST_ID_HEADER] = request_id
