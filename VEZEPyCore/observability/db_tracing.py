"""OpenTelemetry spans for the SQL a service runs through SQLAlchemy.

`opentelemetry-instrumentation-sqlalchemy` would be the library for this, but the package
index this project installed from had no release of it, so this module does the part we need
with SQLAlchemy's own cursor events: one CLIENT span per statement, a child of the request's
span, named by the SQL verb, with the statement text (placeholders only: parameter values
never reach a span) and the error when it fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

MAX_STATEMENT_CHARS = 2000
_SPAN_KEY = "_veze_otel_span"


def instrument_engine(engine: AsyncEngine, provider: TracerProvider | None) -> None:
    """Trace every statement of `engine` with `provider` (nothing when tracing is off)."""
    if provider is None:
        return
    tracer = provider.get_tracer("veze.sqlalchemy")
    sync_engine = engine.sync_engine
    system = sync_engine.dialect.name  # "sqlite" or "postgresql"
    database = Path(str(sync_engine.url.database or "")).name  # a file name, never its path

    def before(
        _conn: Any, _cursor: Any, statement: str, _parameters: Any, context: Any, _many: bool
    ) -> None:
        if context is None:
            return
        verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
        span = tracer.start_span(
            f"{verb} {database}".strip(),
            kind=SpanKind.CLIENT,
            attributes={
                "db.system": system,
                "db.name": database,
                "db.operation": verb,
                "db.statement": statement[:MAX_STATEMENT_CHARS],
            },
        )
        setattr(context, _SPAN_KEY, span)

    def after(
        _conn: Any, _cursor: Any, _statement: str, _parameters: Any, context: Any, _many: bool
    ) -> None:
        span: Span | None = getattr(context, _SPAN_KEY, None)
        if span is not None:
            span.end()
            setattr(context, _SPAN_KEY, None)

    def failed(exception_context: ExceptionContext) -> None:
        context = exception_context.execution_context
        span: Span | None = getattr(context, _SPAN_KEY, None) if context is not None else None
        if span is not None:
            span.record_exception(exception_context.original_exception)
            span.set_status(
                Status(StatusCode.ERROR, type(exception_context.original_exception).__name__)
            )
            span.end()
            setattr(context, _SPAN_KEY, None)

    event.listen(sync_engine, "before_cursor_execute", before)
    event.listen(sync_engine, "after_cursor_execute", after)
    event.listen(sync_engine, "handle_error", failed)
