"""Dependencies for server-rendered pages: who is signed in, or off to the portal."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl, urlencode

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse

from VEZEPyCore.auth.principal import Principal
from VEZEPyCore.web.sso.config import safe_next
from VEZEPyCore.web.sso.relying_party import RelyingParty


class SignInRequired(Exception):
    """Raised by page dependencies; answered with a redirect to `/auth/login`."""

    def __init__(self, next_path: str, *, prompt: str | None = None) -> None:
        super().__init__(next_path)
        self.next_path = next_path
        self.prompt = prompt


async def redirect_to_sign_in(request: Request, exc: Exception) -> RedirectResponse:
    assert isinstance(exc, SignInRequired)
    params = {"next": exc.next_path}
    if exc.prompt:
        params["prompt"] = exc.prompt
    return RedirectResponse(
        "/auth/login?" + urlencode(params), status_code=303, headers={"Cache-Control": "no-store"}
    )


def _relying_party(request: Request) -> RelyingParty:
    rp: RelyingParty = request.app.state.sso
    return rp


def current_path(request: Request) -> str:
    """This page's path and query, to come back to after sign-in (never with a token in it)."""
    query = [(k, v) for k, v in parse_qsl(request.url.query) if k != "access_token"]
    path = request.url.path + ("?" + urlencode(query) if query else "")
    return safe_next(path, "/")


def _is_navigation(request: Request) -> bool:
    """A person opening the page, not a script fetching it: worth a trip to the portal."""
    if request.method != "GET" or request.headers.get("hx-request"):
        return False
    mode = request.headers.get("sec-fetch-mode")
    if mode is not None:
        return mode == "navigate"
    return "text/html" in request.headers.get("accept", "")


async def _page_user(request: Request) -> Principal:
    principal = await _relying_party(request).principal(request)
    if principal is None:
        raise SignInRequired(current_path(request))
    return principal


async def _optional_page_user(request: Request) -> Principal | None:
    rp = _relying_party(request)
    principal = await rp.principal(request)
    if principal is not None:
        return principal
    if (
        rp.config.silent_sign_in
        and _is_navigation(request)
        and not request.cookies.get(rp.checked_cookie)
    ):
        # Ask the portal without showing anything (prompt=none): someone signed in there is
        # recognised on arrival; anyone else comes straight back and sees a sign-in button.
        raise SignInRequired(current_path(request), prompt="none")
    return None


#: The signed-in person of a page; anyone else is sent to sign in and brought back.
PageUser = Annotated[Principal, Depends(_page_user)]
#: The signed-in person, or None for a page that also serves visitors.
OptionalPageUser = Annotated[Principal | None, Depends(_optional_page_user)]
