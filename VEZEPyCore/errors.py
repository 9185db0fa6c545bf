"""One error model for every service, mapped by one handler to one JSON shape."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.utils import is_body_allowed_for_status_code
from pydantic import BaseModel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException

from VEZEPyCore.db.engine import database_unavailable

log = logging.getLogger(__name__)
#: What a 503 for an unreachable database or Redis asks the client to wait (RFC 9110 10.2.3).
UNAVAILABLE_RETRY_AFTER_SECONDS = 5


class AppError(Exception):
    """An error a client can act on. `code` is stable; `detail` is for people."""

    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        status_code: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        # An instance may carry another service's status and code (passed-through refusals).
        if status_code is not None:
            self.status_code = status_code
        if code is not None:
            self.code = code


class BadRequest(AppError):
    status_code, code = 400, "bad_request"


class Unauthorized(AppError):
    status_code, code = 401, "invalid_token"


class Forbidden(AppError):
    status_code, code = 403, "forbidden"


class InsufficientScope(Forbidden):
    code = "insufficient_scope"


class NotFound(AppError):
    status_code, code = 404, "not_found"


class Conflict(AppError):
    status_code, code = 409, "conflict"


class TooManyRequests(AppError):
    status_code, code = 429, "rate_limited"


class UpstreamUnavailable(AppError):
    status_code, code = 502, "upstream_unavailable"


class UpstreamTimeout(AppError):
    status_code, code = 504, "upstream_timeout"


class ServiceUnavailable(AppError):
    status_code, code = 503, "service_unavailable"


class ErrorBody(BaseModel):
    """The JSON every refusal carries (documented in each service's OpenAPI)."""

    error: str
    detail: str


def error_body(code: str, detail: str) -> dict[str, str]:
    return {"error": code, "detail": detail}


#: Codes for the refusals Starlette and FastAPI raise themselves (unknown path, wrong method,
#: unparseable body, body over the size limit), so they share the services' one shape.
_HTTP_CODES = {
    400: "bad_request",
    401: "invalid_token",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "content_too_large",
}


async def _handle_app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return JSONResponse(
        error_body(exc.code, exc.detail), status_code=exc.status_code, headers=exc.headers
    )


async def _handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if not is_body_allowed_for_status_code(exc.status_code):
        return Response(status_code=exc.status_code, headers=headers)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    return JSONResponse(
        error_body(code, str(exc.detail)), status_code=exc.status_code, headers=headers
    )


def _printable(value: Any) -> Any:
    """`value` with lone surrogates (valid in a JSON string, not in UTF-8) spelled as escapes.

    A request may carry "\\ud800"; echoing it back in the 422's `input` would make the UTF-8
    encoding of the response fail, turning a client error into a 500.
    """
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_printable(key): _printable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_printable(item) for item in value]
    return value


async def _handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # FastAPI's own shape (`HTTPValidationError` in the OpenAPI), made safe to encode.
    return JSONResponse({"detail": _printable(jsonable_encoder(exc.errors()))}, status_code=422)


def _unavailable(code: str, detail: str) -> JSONResponse:
    return JSONResponse(
        error_body(code, detail),
        status_code=503,
        headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)},
    )


async def _handle_database_error(request: Request, exc: Exception) -> Response:
    """An unreachable database is a 503 the client may retry; any other DB error stays a 500."""
    if not database_unavailable(exc):
        raise exc
    log.warning("database unavailable during %s %s: %s", request.method, request.url.path, exc)
    return _unavailable("database_unavailable", "the database is unavailable; try again shortly")


async def _handle_redis_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
        raise exc
    log.warning("redis unavailable during %s %s: %s", request.method, request.url.path, exc)
    return _unavailable("redis_unavailable", "a shared store is unavailable; try again shortly")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _handle_app_error)
    # Dependencies that went away answer 503 with the usual shape, not a 500 traceback.
    app.add_exception_handler(DBAPIError, _handle_database_error)
    app.add_exception_handler(RedisError, _handle_redis_error)
    app.add_exception_handler(HTTPException, _handle_http_exception)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
