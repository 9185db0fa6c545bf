from __future__ import annotations

import json
import logging

import pytest

from VEZEPyCore.observability.logs import (
    JsonFormatter,
    RedactingFilter,
    install_token_redaction,
    redact,
)
from VEZEPyCore.observability.request_id import current_request_id


def test_redact_removes_query_and_header_tokens() -> None:
    line = (
        "GET /api/events?user=a%40b&access_token=eyJhbGciOi.abc.def HTTP/1.1 "
        "Authorization: Bearer eyJx.y.z"
    )
    cleaned = redact(line)
    assert "eyJ" not in cleaned
    assert "access_token=[redacted]" in cleaned
    assert "user=a%40b" in cleaned


def test_uvicorn_access_lines_lose_their_tokens(caplog: pytest.LogCaptureFixture) -> None:
    install_token_redaction()
    install_token_redaction()  # idempotent
    logger = logging.getLogger("uvicorn.access")
    assert sum(isinstance(f, RedactingFilter) for f in logger.filters) == 1
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        logger.info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5",
            "GET",
            "/api/events?access_token=secret-token",
            "1.1",
            200,
        )
    assert "secret-token" not in caplog.text
    assert "access_token=[redacted]" in caplog.text


def test_json_lines_carry_the_request_id() -> None:
    record = logging.LogRecord("veze", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    token = current_request_id.set("req-1")
    try:
        entry = json.loads(JsonFormatter("email").format(record))
    finally:
        current_request_id.reset(token)
    assert entry["message"] == "hello world"
    assert entry["request_id"] == "req-1"
    assert entry["service"] == "email"
