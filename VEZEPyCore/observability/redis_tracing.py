"""OpenTelemetry spans for every Redis command, in the trace of the work that ran it.

`opentelemetry-instrumentation-redis` does the work: one CLIENT span per command or pipeline,
the statement sanitised to `COMMAND ? ?` (keys and values never reach a span). It is installed
on redis-py's client classes, once per process, rather than client by client: Redis clients
are made in many start-up hooks (the event bus, each rate limiter, the leaderboards) and a
client somebody adds later must not be silently untraced.

Each app still exports its own spans through its own tracer provider (tests run three apps in
one process, and one process may trace while another app in it does not), so the instrumentation
is handed a routing provider: a span is started by the provider that started the current span,
which puts it in the right trace and the right app's exporter. A command run with no current
span of ours (a pub/sub reader, a worker's poll between units of work, an app with tracing off)
gets no span: a root trace for every poll would bury the traces that matter.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.trace import NoOpTracer, Span, SpanKind, Tracer, TracerProvider

# Providers by the identity of their Resource: every span a provider makes carries that exact
# object, so the current span names its provider. Weak values: a provider that is gone (an app
# that was shut down) drops out by itself.
_PROVIDERS: weakref.WeakValueDictionary[int, SdkTracerProvider] = weakref.WeakValueDictionary()
_NO_SPAN = NoOpTracer()


def register_provider(provider: SdkTracerProvider) -> None:
    """Let Redis commands run under `provider`'s spans become spans of `provider`."""
    _PROVIDERS[id(provider.resource)] = provider


def instrument_redis(provider: SdkTracerProvider) -> None:
    """Trace Redis commands run inside `provider`'s spans (instruments redis-py once)."""
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    register_provider(provider)
    instrumentor = RedisInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=_RoutingTracerProvider())


def _provider_of_current_span(context: Context | None) -> SdkTracerProvider | None:
    resource = getattr(trace.get_current_span(context), "resource", None)
    if resource is None:
        return None
    provider = _PROVIDERS.get(id(resource))
    return provider if provider is not None and provider.resource is resource else None


class _RoutingTracer(Tracer):
    """A tracer that starts each span with the tracer of the current span's provider."""

    def __init__(self, name: str, version: str | None, schema_url: str | None) -> None:
        self._scope = (name, version, schema_url)
        self._tracers: weakref.WeakKeyDictionary[SdkTracerProvider, Tracer] = (
            weakref.WeakKeyDictionary()
        )

    def _tracer_for(self, context: Context | None) -> Tracer:
        provider = _provider_of_current_span(context)
        if provider is None:
            return _NO_SPAN
        tracer = self._tracers.get(provider)
        if tracer is None:
            name, version, schema_url = self._scope
            tracer = provider.get_tracer(name, version, schema_url)
            self._tracers[provider] = tracer
        return tracer

    def start_span(  # type: ignore[override]
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        **options: Any,
    ) -> Span:
        return self._tracer_for(context).start_span(name, context, kind, **options)

    @contextmanager
    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        **options: Any,
    ) -> Iterator[Span]:
        tracer = self._tracer_for(context)
        with tracer.start_as_current_span(name, context, kind, **options) as span:
            yield span


class _RoutingTracerProvider(TracerProvider):
    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Any = None,
    ) -> Tracer:
        return _RoutingTracer(instrumenting_module_name, instrumenting_library_version, schema_url)
