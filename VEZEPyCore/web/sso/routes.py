"""`/auth/*`: the relying party's endpoints, the same in every service that signs in."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from VEZEPyCore.security.csrf import require_csrf
from VEZEPyCore.web.sso.config import safe_next
from VEZEPyCore.web.sso.relying_party import RelyingParty

router = APIRouter(prefix="/auth", tags=["single sign-on"], include_in_schema=False)

FRONTCHANNEL_PAGE = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>Signed out</title>"
    "<p>{message}</p></html>"
)


def relying_party(request: Request) -> RelyingParty:
    rp: RelyingParty = request.app.state.sso
    return rp


RelyingPartyDep = Annotated[RelyingParty, Depends(relying_party)]


@router.get("/login")
async def login(
    request: Request,
    rp: RelyingPartyDep,
    next: Annotated[str | None, Query(max_length=4000)] = None,
    prompt: Literal["none", "login"] | None = None,
) -> Response:
    """Start signing in at the portal (authorization code flow with PKCE S256)."""
    return await rp.start_login(
        request, next_path=safe_next(next, rp.config.home_path), prompt=prompt
    )


@router.get("/callback")
async def callback(
    request: Request,
    rp: RelyingPartyDep,
    code: Annotated[str | None, Query(max_length=2048)] = None,
    state: Annotated[str | None, Query(max_length=512)] = None,
    error: Annotated[str | None, Query(max_length=128)] = None,
    error_description: Annotated[str | None, Query(max_length=500)] = None,
    iss: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """The portal's redirect back: check the state, exchange the code, start the session."""
    return await rp.complete_login(
        request,
        code=code,
        state=state,
        error=error,
        error_description=error_description,
        issuer=iss,
    )


@router.get("/logout")
async def logout_page(request: Request, rp: RelyingPartyDep) -> RedirectResponse:
    """Go to the portal's logout page; signing out there signs out of every service."""
    return RedirectResponse(await rp.logout_url(request.app), status_code=303)


@router.post("/logout", dependencies=[Depends(require_csrf)])
async def logout(request: Request, rp: RelyingPartyDep) -> RedirectResponse:
    """Sign out here, then at the portal (which signs out of every other service)."""
    rp.sign_out_here(request)
    return RedirectResponse(await rp.logout_url(request.app), status_code=303)


@router.get("/frontchannel-logout", response_class=HTMLResponse)
async def frontchannel_logout(
    request: Request,
    rp: RelyingPartyDep,
    iss: Annotated[str | None, Query(max_length=500)] = None,
    sid: Annotated[str | None, Query(max_length=256)] = None,
) -> HTMLResponse:
    """Front-channel logout (OpenID Connect Front-Channel Logout 1.0), loaded by the portal
    in a hidden iframe: ends this browser's session when it belongs to that portal session.
    """
    ended = rp.frontchannel_logout(request, issuer=iss, sid=sid)
    message = "Signed out." if ended else "No matching session."
    return HTMLResponse(
        FRONTCHANNEL_PAGE.format(message=message),
        headers={
            # Section 4 of the spec: the logout page must not be cached.
            "Cache-Control": "no-store",
            "Pragma": "no-cache",
            # Only the portal may frame it.
            "Content-Security-Policy": f"frame-ancestors {_origin(rp.portal_url(request.app))}",
        },
    )


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"
