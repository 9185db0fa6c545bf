"""CSRF protection for cookie-authenticated requests: a double-submit token plus an origin check.

A browser gets a random token in a per-service cookie; a form posts it back in the
`csrf_token` field, a script in the `X-CSRF-Token` header, and the two must match. Another site
can make the browser send the cookie but cannot read it, so it cannot send the matching value.
Requests authenticated by a bearer header need no CSRF check: browsers never add that header.

The cookie is set only when it is missing and the response hands the token out: a page that
rendered it (`csrf_input`, `csrf_token`) or any HTML response. API calls with a bearer token and
health probes send no cookies, and would otherwise get a fresh, never-used one on every answer.
"""

from __future__ import annotations

import hmac
import secrets
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

from fastapi import Request
from markupsafe import Markup
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from VEZEPyCore.errors import Forbidden

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def csrf_cookie_name(service: str) -> str:
    # Cookies are shared across ports of one host: each service needs its own name.
    return f"veze_{service}_csrf"


class _HandOut:
    """Whether this request gave its token to the client (shared even if `state` is copied)."""

    __slots__ = ("given",)

    def __init__(self) -> None:
        self.given = False


class CsrfCookieMiddleware:
    """Gives a browser its CSRF token cookie when a page needs it (module docstring), and
    exposes the token as `state.csrf_token`."""

    def __init__(self, app: ASGIApp, *, service: str, secure: bool) -> None:
        self.app = app
        self.cookie_name = csrf_cookie_name(service)
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        existing = _cookie(scope, self.cookie_name)
        token = existing if existing and len(existing) == 43 else secrets.token_urlsafe(32)
        hand_out = _HandOut()
        state = scope.setdefault("state", {})
        state["csrf_token"] = token
        state[_HAND_OUT] = hand_out

        async def send_with_cookie(message: Message) -> None:
            if (
                message["type"] == "http.response.start"
                and token != existing
                and (hand_out.given or _is_html(message))
            ):
                cookie = f"{self.cookie_name}={token}; Path=/; SameSite=Lax; HttpOnly"
                MutableHeaders(scope=message).append(
                    "set-cookie", cookie + ("; Secure" if self.secure else "")
                )
            await send(message)

        await self.app(scope, receive, send_with_cookie)


_HAND_OUT = "csrf_hand_out"


def _is_html(message: Message) -> bool:
    """An HTML response may carry a form (rendered as it streams, after this start)."""
    for key, value in message.get("headers", ()):
        if key.lower() == b"content-type":
            return bool(value.lower().startswith(b"text/html"))
    return False


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:
                return None
            morsel = jar.get(name)
            return morsel.value if morsel is not None else None
    return None


def csrf_token(request: Request) -> str:
    """The token to put in a form or page; the response then sets the cookie that matches."""
    token: str = request.state.csrf_token
    hand_out: _HandOut | None = getattr(request.state, _HAND_OUT, None)
    if hand_out is not None:
        hand_out.given = True
    return token


def csrf_input(request: Request) -> Markup:
    """The hidden form field, for templates: `{{ csrf_input(request) }}`."""
    return Markup('<input type="hidden" name="{}" value="{}">').format(
        CSRF_FIELD, csrf_token(request)
    )


async def require_csrf(request: Request) -> None:
    """Dependency for cookie-authenticated unsafe requests: 403 unless the token matches."""
    if request.method in SAFE_METHODS:
        return
    _check_origin(request)
    expected = _cookie(request.scope, request.app.state.csrf_cookie_name)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(expected, sent):
        raise Forbidden("the form has expired or did not come from this site; reload and retry")


def _check_origin(request: Request) -> None:
    """Refuse a cross-site `Origin` outright (Fetch Metadata and Origin are set by browsers)."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise Forbidden("cross-site request refused")
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        if urlsplit(origin).netloc != host:
            raise Forbidden("cross-origin request refused")
