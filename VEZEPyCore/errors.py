"""One error model for every service, mapped by one handler to one JSON shape."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


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


def error_body(code: str, detail: str) -> dict[str, str]:
    return {"error": code, "detail": detail}


async def _handle_app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return JSONResponse(
        error_body(exc.code, exc.detail), status_code=exc.status_code, headers=exc.headers
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _handle_app_error)
