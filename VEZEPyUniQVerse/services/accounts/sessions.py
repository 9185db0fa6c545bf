"""Browser sessions at the portal: an HttpOnly cookie holding a random token.

Only the token's SHA-256 is stored, so a copy of the database cannot be replayed as cookies.
Each session also has a public `sid` (OpenID Connect session id) that tokens and single
sign-on clients refer to, and that logout uses to end the session everywhere.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import Request, Response
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyUniQVerse.db.models import User, WebSession

SESSION_COOKIE = "veze_portal_session"
SESSION_LIFETIME = timedelta(days=14)
#: `last_seen_at` is written at most this often (not on every request).
TOUCH_INTERVAL = timedelta(minutes=5)


@dataclass(frozen=True)
class SessionInfo:
    session_id: str  # the stored hash
    sid: str
    user: User
    second_factor_done: bool


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


async def create_session(
    db: AsyncSession,
    response: Response,
    *,
    user: User,
    request: Request,
    secure: bool,
    second_factor_done: bool = True,
) -> WebSession:
    """Start a session for `user` and set its cookie on `response` (caller commits)."""
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    web_session = WebSession(
        id=_hash(token),
        sid=secrets.token_hex(16),
        user_id=user.id,
        created_at=now,
        last_seen_at=now,
        expires_at=now + SESSION_LIFETIME,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent", "")[:300],
        second_factor_done=second_factor_done,
    )
    db.add(web_session)
    await db.flush()
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        secure=secure,
        samesite="lax",
        path="/",
    )
    return web_session


async def current_session(db: AsyncSession, request: Request) -> SessionInfo | None:
    """The live session of this browser, or None (expired, revoked, disabled user, no cookie)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 100:
        return None
    now = datetime.now(UTC)
    row = (
        await db.execute(
            select(WebSession, User)
            .join(User, User.id == WebSession.user_id)
            .where(WebSession.id == _hash(token))
        )
    ).one_or_none()
    if row is None:
        return None
    web_session, user = row
    if web_session.revoked_at is not None or web_session.expires_at <= now or user.disabled:
        return None
    if now - web_session.last_seen_at > TOUCH_INTERVAL:
        await db.execute(
            update(WebSession).where(WebSession.id == web_session.id).values(last_seen_at=now)
        )
        await db.commit()
    return SessionInfo(
        session_id=web_session.id,
        sid=web_session.sid,
        user=user,
        second_factor_done=web_session.second_factor_done,
    )


async def revoke_session(db: AsyncSession, *, session_id: str) -> None:
    await db.execute(
        update(WebSession)
        .where(WebSession.id == session_id, WebSession.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )


def clear_session_cookie(response: Response, *, secure: bool) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="lax")
