from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from VEZEPyEmail.app.main import create_app
from VEZEPyEmail.app.settings import EmailSettings


async def test_otel_enabled_records_server_spans_by_route(
    email_settings: EmailSettings,
    running: Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]],
) -> None:
    app = create_app(email_settings.model_copy(update={"otel_enabled": True}))
    exporter = InMemorySpanExporter()
    app.state.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with running(app) as client:
        response = await client.get("/api/messages/41/row")
    assert response.status_code == 401
    server_spans = [span for span in exporter.get_finished_spans() if span.kind.name == "SERVER"]
    assert [span.attributes.get("http.route") for span in server_spans if span.attributes] == [
        "/api/messages/{message_id}/row"
    ]


async def test_tracing_is_off_by_default(email_app: FastAPI) -> None:
    assert email_app.state.tracer_provider is None
