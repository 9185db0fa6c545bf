"""The relying party's cookies: the session, pending sign-ins, and the silent-check marker.

Cookies are shared by every port of a host, so each service's names carry its name
(`veze_email_session`, `veze_game_session`). Values are signed with itsdangerous under a
per-installation secret: a browser can read nothing it could not already see in its own
tokens, and cannot change anything. All cookies are HttpOnly and SameSite=Lax (sent on the
portal's redirect back and inside the portal's same-site logout iframe), Secure when
`settings.secure_cookies`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

from itsdangerous import BadData, URLSafeTimedSerializer
from starlette.responses import Response

#: Pending sign-ins kept at once (several tabs may start one); the oldest is dropped.
MAX_PENDING_LOGINS = 3
#: Browsers refuse cookies above 4096 bytes (name, value and attributes together).
MAX_COOKIE_BYTES = 4000

SameSite = Literal["lax", "strict", "none"]


def session_cookie_name(service: str) -> str:
    return f"veze_{service}_session"


def login_cookie_name(service: str) -> str:
    return f"veze_{service}_sso_login"


def checked_cookie_name(service: str) -> str:
    return f"veze_{service}_sso_checked"


@dataclass(frozen=True)
class SsoSession:
    """A signed-in browser at one service: its tokens and who it is."""

    access_token: str
    refresh_token: str | None
    #: When the access token expires (Unix seconds).
    expires_at: int
    #: The portal session it belongs to (OpenID Connect `sid`), for front-channel logout.
    sid: str | None
    subject: str
    handle: str | None
    email: str | None

    def seconds_left(self, now: float | None = None) -> float:
        return self.expires_at - (time.time() if now is None else now)


@dataclass(frozen=True)
class LoginTransaction:
    """One started authorization request (RFC 6749 section 4.1, PKCE RFC 7636)."""

    state: str
    nonce: str
    code_verifier: str
    next_path: str
    prompt: str | None
    created_at: int


class CookieCodec:
    """Signs and reads the session and pending-login cookies of one service."""

    def __init__(self, secret: str, *, service: str) -> None:
        self._session = URLSafeTimedSerializer(secret, salt=f"veze-sso-session:{service}")
        self._login = URLSafeTimedSerializer(secret, salt=f"veze-sso-login:{service}")

    def dump_session(self, session: SsoSession) -> str:
        return self._session.dumps(asdict(session))

    def load_session(self, value: str, *, max_age: int) -> SsoSession | None:
        data = _loads(self._session, value, max_age)
        if not isinstance(data, dict):
            return None
        try:
            session = SsoSession(**data)
        except TypeError:
            return None
        if not isinstance(session.access_token, str) or not isinstance(session.expires_at, int):
            return None
        return session

    def dump_logins(self, logins: list[LoginTransaction]) -> str:
        return self._login.dumps([asdict(login) for login in logins[-MAX_PENDING_LOGINS:]])

    def load_logins(self, value: str | None, *, max_age: int) -> list[LoginTransaction]:
        if not value:
            return []
        data = _loads(self._login, value, max_age)
        if not isinstance(data, list):
            return []
        now = time.time()
        logins = []
        for item in data:
            if not isinstance(item, dict):
                continue
            try:
                login = LoginTransaction(**item)
            except TypeError:
                continue
            if now - login.created_at <= max_age:
                logins.append(login)
        return logins


def _loads(serializer: URLSafeTimedSerializer, value: str, max_age: int) -> Any:
    try:
        return serializer.loads(value, max_age=max_age)
    except (BadData, ValueError, TypeError):
        return None


def set_cookie_header(
    name: str, value: str, *, max_age: int | None, secure: bool, path: str = "/"
) -> str:
    """One `Set-Cookie` value: HttpOnly, SameSite=Lax, Secure when asked."""
    response = Response()
    response.set_cookie(
        name, value, max_age=max_age, path=path, secure=secure, httponly=True, samesite="lax"
    )
    return response.headers["set-cookie"]


def delete_cookie_header(name: str, *, secure: bool, path: str = "/") -> str:
    response = Response()
    response.delete_cookie(name, path=path, secure=secure, httponly=True, samesite="lax")
    return response.headers["set-cookie"]
