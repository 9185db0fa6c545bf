"""OpenTelemetry tracing, switched on by `OTEL_ENABLED=1`.

Instruments FastAPI (server spans), httpx (client spans, which inject `traceparent` so a
Game -> Email call is one trace) and Redis (`redis_tracing`: every command run inside a
request is a span of it). SQL spans come from `db_tracing`. The exporter is OTLP/HTTP when an
endpoint is configured.
"""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from VEZEPyCore.observability.redis_tracing import instrument_redis
from VEZEPyCore.settings import CoreSettings


def build_tracer_provider(
    service: str, settings: CoreSettings, processor: SpanProcessor | None = None
) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": f"veze-{service}"}))
    if processor is not None:
        provider.add_span_processor(processor)
    elif settings.otel_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=f"{settings.otel_endpoint.rstrip('/')}/v1/traces")
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def instrument_app(app: FastAPI, service: str, settings: CoreSettings) -> TracerProvider | None:
    if not settings.otel_enabled:
        return None
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    provider = build_tracer_provider(service, settings)
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls="health,metrics"
    )
    instrument_redis(provider)
    return provider


def instrument_httpx_client(client: object, provider: TracerProvider | None) -> None:
    if provider is None:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor.instrument_client(client, tracer_provider=provider)  # type: ignore[arg-type]
