"""Tracing across services and the JSON logs that point at it.

- With `OTEL_ENABLED=1`, a Game -> Email call is one trace: Email's server span is the child of
  Game's httpx client span (W3C `traceparent` propagated), both exported by the in-memory
  exporter; the SQL and the Redis commands a request runs are in its trace (a real Redis),
  and each app's Redis spans reach that app's exporter only.
- A service started as the Procfile starts it (uvicorn with its `--log-config`) writes only
  JSON lines, and the line of a request carries its request id (also returned in
  `X-Request-ID`) and its trace id.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import redis.asyncio as redis_asyncio
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.exported_metrics import Running
from tests.test_integration_game_email import ALICE, bearer, provision
from VEZEPyCore.observability.log_config import SERVICES, config_path, render
from VEZEPyCore.observability.redis_tracing import instrument_redis
from VEZEPyCore.observability.tracing import build_tracer_provider
from VEZEPyCore.settings import CoreSettings
from VEZEPyCore.testing import free_port, serve_app
from VEZEPyEmail.app.main import create_app as create_email_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyGame.app.main import create_app as create_game_app
from VEZEPyGame.app.settings import GameSettings

ROOT = Path(__file__).resolve().parents[1]
Minter = Callable[..., str]


def spans_of(exporter: InMemorySpanExporter, kind: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.kind.name == kind]


async def test_a_game_to_email_call_is_one_trace(
    running: Running, game_settings: GameSettings, email_settings: EmailSettings, mint: Minter
) -> None:
    traced = {"otel_enabled": True}
    email_app = create_email_app(email_settings.model_copy(update=traced))
    exporter = InMemorySpanExporter()
    email_app.state.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    token = mint(
        ALICE, audience=["veze-game", "veze-email"], scopes=("game.read_mail", "email.read")
    )
    # Email on a real socket: the trace context can only cross in the `traceparent` header.
    async with serve_app(email_app) as email_url:
        game_app = create_game_app(
            game_settings.model_copy(update={**traced, "service_urls": {"email": email_url}})
        )
        game_app.state.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        async with (
            httpx.AsyncClient(base_url=email_url, timeout=10) as email,
            running(game_app) as game,
        ):
            await provision(email, mint, ALICE)
            exporter.clear()
            response = await game.get("/email/mail", params={"user": ALICE}, headers=bearer(token))
    assert response.status_code == 200, response.text

    servers = {
        span.resource.attributes["service.name"]: span for span in spans_of(exporter, "SERVER")
    }
    game_server, email_server = servers["veze-game"], servers["veze-email"]
    assert game_server.attributes is not None and email_server.attributes is not None
    assert game_server.attributes["http.route"] == "/email/mail"
    assert email_server.attributes["http.route"] == "/api/messages"
    (client,) = [
        span
        for span in spans_of(exporter, "CLIENT")
        if span.resource.attributes["service.name"] == "veze-game"
        and span.attributes is not None
        and "db.system" not in span.attributes  # the call to Email, not Game's own SQL
    ]
    assert game_server.context is not None and email_server.context is not None
    assert client.context is not None and client.parent is not None
    trace_id = game_server.context.trace_id
    assert client.context.trace_id == email_server.context.trace_id == trace_id
    # Game's request -> its call to Email -> Email's request: one causal chain.
    assert client.parent.span_id == game_server.context.span_id
    assert email_server.parent is not None
    assert email_server.parent.span_id == client.context.span_id


async def test_sql_statements_are_spans_of_the_request_that_ran_them(
    running: Running, email_settings: EmailSettings, mint: Minter
) -> None:
    app = create_email_app(email_settings.model_copy(update={"otel_enabled": True}))
    exporter = InMemorySpanExporter()
    app.state.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with running(app) as email:
        exporter.clear()
        await provision(email, mint, ALICE)  # POST /api/mailboxes: ORM writes
    (server,) = spans_of(exporter, "SERVER")
    assert server.context is not None
    queries = [
        span
        for span in spans_of(exporter, "CLIENT")
        if span.attributes is not None
        and span.attributes.get("db.system") in {"sqlite", "postgresql"}
    ]
    assert queries, "no SQL spans"
    in_request = [
        span
        for span in queries
        if span.context is not None and span.context.trace_id == server.context.trace_id
    ]
    assert any(span.name.startswith("INSERT") for span in in_request)
    # The rest is the outbound worker's polling: its own traces, outside any request.
    assert all(span.parent is None for span in queries if span not in in_request)
    for span in queries:
        assert span.attributes is not None
        assert ALICE not in str(span.attributes["db.statement"])  # parameters never recorded


def redis_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [
        span
        for span in spans_of(exporter, "CLIENT")
        if span.attributes is not None and span.attributes.get("db.system") == "redis"
    ]


async def test_redis_commands_are_spans_of_the_request_that_ran_them(
    running: Running, email_settings: EmailSettings, mint: Minter, redis_url: str
) -> None:
    app = create_email_app(
        email_settings.model_copy(update={"otel_enabled": True, "redis_url": redis_url})
    )
    exporter = InMemorySpanExporter()
    app.state.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with running(app) as email:
        exporter.clear()
        await provision(email, mint, ALICE)  # publishes the welcome mail's event on the bus
    (server,) = spans_of(exporter, "SERVER")
    assert server.context is not None
    # The event goes to the mailbox's channel and the service-wide one: a PUBLISH each.
    publishes = [span for span in redis_spans(exporter) if span.name == "PUBLISH"]
    assert len(publishes) >= 1
    for publish in publishes:
        assert publish.context is not None and publish.parent is not None
        assert publish.context.trace_id == server.context.trace_id
        assert publish.resource.attributes["service.name"] == "veze-email"
        assert publish.attributes is not None
        assert publish.attributes["db.statement"] == "PUBLISH ? ?"  # channel, payload not kept
        assert ALICE not in str(dict(publish.attributes))


async def test_redis_spans_go_to_the_provider_of_the_span_they_run_in(redis_url: str) -> None:
    exporters = {name: InMemorySpanExporter() for name in ("portal", "game")}
    providers = {
        name: build_tracer_provider(name, CoreSettings(), SimpleSpanProcessor(exporter))
        for name, exporter in exporters.items()
    }
    for provider in providers.values():
        instrument_redis(provider)
    client = redis_asyncio.Redis.from_url(redis_url)
    try:
        await client.ping()  # no span of ours is current: no span at all
        for name, provider in providers.items():
            with provider.get_tracer("test").start_as_current_span(f"{name} request"):
                async with client.pipeline(transaction=True) as pipe:
                    pipe.incr(f"veze:test:tracing:{name}")
                    pipe.delete(f"veze:test:tracing:{name}")
                    await pipe.execute()
                await client.get("veze:test:tracing:absent")
    finally:
        await client.aclose()
    for name, exporter in exporters.items():
        (request,) = [
            span for span in exporter.get_finished_spans() if span.name.endswith("request")
        ]
        assert request.name == f"{name} request" and request.context is not None
        commands = redis_spans(exporter)
        assert sorted(span.name for span in commands) == ["GET", "INCRBY DEL"]  # a pipeline: one
        for span in commands:
            assert span.parent is not None and span.parent.span_id == request.context.span_id
            assert span.resource.attributes["service.name"] == f"veze-{name}"


def test_log_configs_are_what_log_config_py_writes() -> None:
    for service in SERVICES:
        assert config_path(service).read_text() == render(service), (
            f"run python -m VEZEPyCore.observability.log_config ({service})"
        )
        assert f"logging/{service}.json" in (ROOT / "Procfile").read_text()
        assert f"logging/{service}.json" in (ROOT / "docker" / f"{service}.Dockerfile").read_text()


def test_a_served_service_logs_json_with_request_and_trace_ids(tmp_path: Path) -> None:
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("UNI_", "GAME_", "EMAIL_", "VEZE_", "OTEL_", "REDIS"))
    }
    env.update(
        {
            "VEZE_VAR_DIR": str(tmp_path / "var"),
            "VEZE_ENV": "test",
            "EMAIL_SMTP_ENABLED": "0",
            "EMAIL_OUTBOUND_WORKER": "0",
            "OTEL_ENABLED": "1",
        }
    )
    command = [
        sys.executable, "-m", "uvicorn", "VEZEPyEmail.app.main:app",
        "--log-config", str(config_path("email").relative_to(ROOT)),
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    log = (tmp_path / "email.log").open("w+")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "uvicorn exited"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.2)
        response = httpx.get(
            f"http://127.0.0.1:{port}/api/messages",
            params={"user": ALICE, "access_token": "secret-token-value"},
            headers={"X-Request-ID": "req-trace-check-1"},
            timeout=5,
        )
        assert response.status_code == 401
        assert response.headers["x-request-id"] == "req-trace-check-1"
        generated = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
        assert len(generated.headers["x-request-id"]) == 32  # made up when none is sent
        deadline = time.monotonic() + 10
        while "req-trace-check-1" not in (tmp_path / "email.log").read_text():
            assert time.monotonic() < deadline, "the request was not logged"
            time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()

    text = (tmp_path / "email.log").read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # all JSON
    assert {line["service"] for line in lines} == {"email"}
    (access,) = [line for line in lines if line.get("request_id") == "req-trace-check-1"]
    assert access["logger"] == "uvicorn.access"
    assert len(access["trace_id"]) == 32 and int(access["trace_id"], 16) != 0
    assert "secret-token-value" not in text and "access_token=[redacted]" in access["message"]
