"""`PageRoute`: routes that answer people, so every refusal is a page, never JSON or a trace.

The service-wide error handler speaks JSON (right for APIs). A router built with
`APIRouter(route_class=PageRoute)` instead turns the errors its routes and their dependencies
raise into HTML: `LoginRequired` into a redirect to the log-in page, a CSRF refusal or a missing
role into a 403 page, a rate limit into a 429 page that keeps its `Retry-After`, and a form with
missing fields into a 400 page.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from VEZEPyCore.errors import AppError
from VEZEPyCore.web.templates import render
from VEZEPyUniQVerse.services.accounts.deps import LoginRequired

TITLES = {
    400: "That did not work",
    401: "Please log in",
    403: "Not allowed",
    404: "Not found",
    409: "Already taken",
    429: "Slow down",
}


def error_page(
    request: Request,
    status_code: int,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    context: dict[str, Any] | None = None,
) -> Response:
    response = render(
        request,
        "error.html",
        {
            "title": TITLES.get(status_code, "Something went wrong"),
            "message": message,
            "status_code": status_code,
            "retry_after": (headers or {}).get("Retry-After"),
            "back": _form_of(request) if request.method != "GET" else None,
            **(context or {}),
        },
        status_code=status_code,
    )
    response.headers.update(headers or {})
    return response


def _form_of(request: Request) -> str | None:
    """The page holding the form that was posted, for a "back to the form" link."""
    path = request.url.path
    if path in {"/signup", "/login", "/login/totp"}:
        return path
    for section in ("/account", "/admin"):
        if path.startswith(section + "/"):
            return section
    return None


class PageRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle_page(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired as exc:
                return RedirectResponse(exc.login_url, status_code=status.HTTP_303_SEE_OTHER)
            except AppError as exc:
                message = exc.detail[:1].upper() + exc.detail[1:]
                return error_page(request, exc.status_code, message, headers=exc.headers)
            except RequestValidationError:
                return error_page(
                    request,
                    status.HTTP_400_BAD_REQUEST,
                    "The form was incomplete. Go back, fill in every field and send it again.",
                )

        return handle_page
