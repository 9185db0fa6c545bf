"""Who is signed in at the portal, as FastAPI dependencies.

A session whose second factor is still owed counts as nobody: pages, the OAuth authorize
endpoint and everything else see a person only once the log-in is complete.

- `MaybeUserDep`: the `SessionInfo`, or None.
- `CurrentUserDep`: the `SessionInfo`, or `LoginRequired` (401; pages on `PageRoute` turn it
  into a redirect to `/login?next=<this page>`).
- `AdminDep`: as `CurrentUserDep`, and 403 unless the account has the admin role.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyCore.errors import Forbidden, Unauthorized
from VEZEPyCore.security.ratelimit import RateLimiter
from VEZEPyCore.web.deps import SessionDep
from VEZEPyUniQVerse.services.accounts.sessions import SessionInfo, current_session
from VEZEPyUniQVerse.services.accounts.throttle import DEFAULT_POLICY, Throttle, ThrottlePolicy

MAX_NEXT_LENGTH = 2000


class LoginRequired(Unauthorized):
    code = "login_required"

    def __init__(self, next_path: str) -> None:
        super().__init__("log in to continue")
        self.next_path = next_path

    @property
    def login_url(self) -> str:
        return login_url(self.next_path)


def safe_next(raw: str | None, default: str = "/home") -> str:
    """`raw` when it is a path on this site, else `default` (no open redirects)."""
    if not raw or len(raw) > MAX_NEXT_LENGTH:
        return default
    # Only "/path...": not "//host", not "/\\host" (browsers read "\" as "/"), no scheme, and
    # no control characters or spaces that some browsers strip before resolving.
    if not raw.startswith("/") or raw.startswith(("//", "/\\")):
        return default
    if any(ord(character) < 0x21 or character in "\\\x7f" for character in raw):
        return default
    return raw


def login_url(next_path: str | None) -> str:
    target = safe_next(next_path, default="")
    return f"/login?next={quote(target, safe='')}" if target else "/login"


async def current_user(db: AsyncSession, request: Request) -> SessionInfo | None:
    """The complete (second factor done) session of this browser, or None."""
    info = await current_session(db, request)
    return info if info is not None and info.second_factor_done else None


async def _maybe_user(request: Request, db: SessionDep) -> SessionInfo | None:
    info = await current_user(db, request)
    request.state.viewer = info
    return info


async def require_user(request: Request, db: SessionDep) -> SessionInfo:
    info = await _maybe_user(request, db)
    if info is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path if request.method == "GET" else "/account")
    return info


CurrentUserDep = Annotated[SessionInfo, Depends(require_user)]
MaybeUserDep = Annotated[SessionInfo | None, Depends(_maybe_user)]


async def require_admin(info: CurrentUserDep) -> SessionInfo:
    if "admin" not in info.user.roles:
        raise Forbidden("This page is for administrators of the portal.")
    return info


AdminDep = Annotated[SessionInfo, Depends(require_admin)]


def _throttle(request: Request) -> Throttle:
    limiter: RateLimiter = request.app.state.rate_limiter
    # Deployments (and tests) may tune the budgets by putting a policy on the app's state.
    policy: ThrottlePolicy = getattr(request.app.state, "throttle_policy", DEFAULT_POLICY)
    return Throttle(limiter, policy)


ThrottleDep = Annotated[Throttle, Depends(_throttle)]
