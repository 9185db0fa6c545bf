"""Cookies decided during a request (a refreshed session, a cleared one) reach the response.

Dependencies cannot set headers on a response a route returns itself (every page returns a
template response), so they queue `Set-Cookie` values in the request's state and this
middleware adds them when the response starts, whatever produced it: a page, a JSON error,
a redirect or an event stream.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PENDING_COOKIES = "veze_sso_set_cookies"


def queue_cookie(connection: HTTPConnection, header: str) -> None:
    """Add a `Set-Cookie` value to this request's response."""
    state = connection.scope.setdefault("state", {})
    state.setdefault(PENDING_COOKIES, []).append(header)


class SsoCookieMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                pending: list[str] = state.pop(PENDING_COOKIES, [])
                if pending:
                    headers = MutableHeaders(scope=message)
                    for header in pending:
                        headers.append("set-cookie", header)
                    # A response that changes a session must not be stored by any cache.
                    if "cache-control" not in headers:
                        headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_cookies)
