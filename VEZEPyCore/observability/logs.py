"""JSON log lines carrying the request id; access tokens are redacted from anything logged."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

from opentelemetry import trace

from VEZEPyCore.observability.request_id import current_request_id

_TOKEN_IN_TEXT = re.compile(r"(access_token=)[^&\s\"']+", re.IGNORECASE)
#: The OAuth redirect back to a service (`/auth/callback?code=...`) carries a one-time code:
#: useless without the PKCE verifier and client secret, but no business of a log either.
_CODE_IN_QUERY = re.compile(r"([?&]code=)[^&\s\"']+")
_BEARER_IN_TEXT = re.compile(r"(bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


def redact(text: str) -> str:
    text = _CODE_IN_QUERY.sub(r"\1[redacted]", _TOKEN_IN_TEXT.sub(r"\1[redacted]", text))
    return _BEARER_IN_TEXT.sub(r"\1[redacted]", text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, service, logger, message, and the request id and
    trace id of the request being served (so a log line leads to its trace and back)."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        request_id = current_request_id.get()
        if request_id:
            entry["request_id"] = request_id
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            # The W3C trace-context spelling, as tracing back ends and `traceparent` show it.
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure_json_logging(service: str, level: str = "INFO") -> None:
    """Route the root logger (and uvicorn's) through one JSON handler on stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True


class RedactingFilter(logging.Filter):
    """Removes bearer tokens from a record before any handler formats it.

    uvicorn logs the full request line, and EventSource and WebSocket clients can only send
    their token in the query string (`access_token=`), so access logs would otherwise hold
    live credentials.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        # Redact each argument in place: uvicorn's formatters unpack `args` by position.
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


#: Loggers that print request lines: uvicorn's access log and its WebSocket handshake lines.
REQUEST_LINE_LOGGERS = ("uvicorn.access", "uvicorn.error")


def install_token_redaction() -> None:
    for name in REQUEST_LINE_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RedactingFilter) for existing in logger.filters):
            logger.addFilter(RedactingFilter())
