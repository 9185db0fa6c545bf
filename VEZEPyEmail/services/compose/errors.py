"""Refusals of a composed message, each naming the request field it is about."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from VEZEPyCore.errors import AppError, error_body


class ComposeInvalid(AppError):
    """422 with `field` (e.g. "to[1]", "attachments") so a form can mark the culprit; 404 with
    `field` for an id that is not the caller's (an upload of someone else, say)."""

    status_code, code = 422, "invalid_message"

    def __init__(
        self, field: str, detail: str, *, code: str | None = None, status_code: int | None = None
    ) -> None:
        super().__init__(detail, code=code, status_code=status_code)
        self.field = field


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ComposeInvalid)
    body: dict[str, str] = {**error_body(exc.code, exc.detail), "field": exc.field}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def install_compose_errors(app: FastAPI) -> None:
    """Map ComposeInvalid to the one error shape plus its `field`."""
    app.add_exception_handler(ComposeInvalid, _handle)
