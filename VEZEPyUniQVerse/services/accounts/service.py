"""Accounts: sign-up, password checks, profile changes, app passwords and browser sessions.

Keyword-only functions on an `AsyncSession`; they add and flush, the caller commits. Errors a
person can cause are `BadRequest`/`Conflict`/`NotFound` with a sentence meant for them.
Argon2 runs in a worker thread: it is deliberately slow, and must not stall the event loop.
"""

from __future__ import annotations

import asyncio
import secrets
import string
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from argon2 import PasswordHasher
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyCore.errors import BadRequest, Conflict, NotFound
from VEZEPyUniQVerse.db.models import AppPassword, RefreshToken, User, WebSession
from VEZEPyUniQVerse.services.accounts import passwords
from VEZEPyUniQVerse.services.accounts.handles import handle_key, normalise_handle
from VEZEPyUniQVerse.services.accounts.policy import check_password

ROLES = ("user", "admin")
MAX_DISPLAY_NAME_LENGTH = 200
MAX_APP_PASSWORD_NAME_LENGTH = 100
MAX_APP_PASSWORDS = 25
APP_PASSWORD_GROUPS = 4
APP_PASSWORD_GROUP_LENGTH = 4

#: Machine-generated secrets (app passwords, recovery codes) carry 75+ bits of entropy, so they
#: need no stretching against guessing; Argon2id at OWASP's minimum (19 MiB, 2 passes) keeps a
#: lookup over several of them fast while a stolen table still costs real work per guess.
_secret_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


class WrongPassword(BadRequest):
    """The account password given to confirm a change is wrong."""


FailureReason = Literal["unknown_handle", "bad_password", "disabled"]


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(passwords.hash_password, password)


async def hash_secret(secret: str) -> str:
    """Hash a generated secret (app password, recovery code)."""
    return await asyncio.to_thread(_secret_hasher.hash, secret)


async def verify_password(password_hash: str, password: str) -> bool:
    return await asyncio.to_thread(passwords.verify_password, password_hash, password)


async def get_user_by_handle(db: AsyncSession, *, handle: str) -> User | None:
    return await db.scalar(select(User).where(User.handle == handle_key(handle)))


async def get_user(db: AsyncSession, *, user_id: int) -> User | None:
    return await db.get(User, user_id)


def clean_display_name(raw: str, *, default: str) -> str:
    name = " ".join(raw.split())
    if len(name) > MAX_DISPLAY_NAME_LENGTH:
        raise BadRequest(f"The display name may be at most {MAX_DISPLAY_NAME_LENGTH} characters.")
    if any(not character.isprintable() for character in name):
        raise BadRequest("The display name contains characters that cannot be shown.")
    return name or default


def check_new_password(password: str, confirm: str, *, handle: str) -> None:
    if password != confirm:
        raise BadRequest("The two passwords differ; type the same password twice.")
    check_password(password, handle=handle)


async def create_user(
    db: AsyncSession,
    *,
    handle: str,
    display_name: str,
    password: str,
    confirm: str,
    admin_handles: Collection[str] = (),
) -> User:
    """A new account; 400 for a bad handle or weak password, 409 when the handle is taken."""
    try:
        handle = normalise_handle(handle)
    except BadRequest as exc:
        raise BadRequest(exc.detail[0].upper() + exc.detail[1:] + ".") from exc
    name = clean_display_name(display_name, default=handle)
    check_new_password(password, confirm, handle=handle)
    if await get_user_by_handle(db, handle=handle) is not None:
        raise Conflict(f"The handle {handle!r} is taken; choose another.")
    now = datetime.now(UTC)
    roles = ["user", "admin"] if handle in {h.lower() for h in admin_handles} else ["user"]
    user = User(
        handle=handle,
        display_name=name,
        password_hash=await hash_password(password),
        roles=roles,
        disabled=False,
        totp_enabled=False,
        created_at=now,
        updated_at=now,
        password_changed_at=now,
    )
    db.add(user)
    try:
        await db.flush()
    except IntegrityError as exc:  # someone took it between our check and our insert
        await db.rollback()
        raise Conflict(f"The handle {handle!r} is taken; choose another.") from exc
    return user


@dataclass(frozen=True)
class LoginCheck:
    user: User | None
    failure: FailureReason | None


async def check_login(db: AsyncSession, *, handle: str, password: str) -> LoginCheck:
    """Check a handle and password, costing the same Argon2 work whether or not it exists."""
    user = await get_user_by_handle(db, handle=handle)
    if user is None:
        await verify_password(passwords.DUMMY_HASH, password)
        return LoginCheck(None, "unknown_handle")
    if not await verify_password(user.password_hash, password):
        return LoginCheck(user, "bad_password")
    if user.disabled:
        return LoginCheck(user, "disabled")
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = await hash_password(password)
    return LoginCheck(user, None)


async def set_display_name(db: AsyncSession, *, user: User, display_name: str) -> None:
    user.display_name = clean_display_name(display_name, default=user.handle)
    user.updated_at = datetime.now(UTC)
    await db.flush()


async def change_password(
    db: AsyncSession,
    *,
    user: User,
    current: str,
    new: str,
    confirm: str,
    keep_session_id: str,
) -> int:
    """Set a new password and end every other session; returns how many were ended."""
    if not await verify_password(user.password_hash, current):
        raise WrongPassword("The current password is wrong.")
    if new == current:
        raise BadRequest("The new password is the same as the current one.")
    check_new_password(new, confirm, handle=user.handle)
    now = datetime.now(UTC)
    user.password_hash = await hash_password(new)
    user.password_changed_at = now
    user.updated_at = now
    return await revoke_sessions(db, user_id=user.id, except_session_id=keep_session_id)


async def require_password(user: User, password: str) -> None:
    """400 unless `password` is the account password (re-authentication for risky changes)."""
    if not await verify_password(user.password_hash, password):
        raise WrongPassword("The password is wrong.")


# --- app passwords -------------------------------------------------------------------------


def new_app_password() -> str:
    """Four groups of four lower-case letters: easy to type into a phone, ~75 bits."""
    return " ".join(
        "".join(secrets.choice(string.ascii_lowercase) for _ in range(APP_PASSWORD_GROUP_LENGTH))
        for _ in range(APP_PASSWORD_GROUPS)
    )


def _compact(secret: str) -> str:
    return "".join(secret.split()).lower()


async def create_app_password(
    db: AsyncSession, *, user: User, name: str
) -> tuple[AppPassword, str]:
    """A new app password; the clear text is returned once and never stored."""
    name = " ".join(name.split())
    if not name:
        raise BadRequest("Give the app password a name, such as the mail client it is for.")
    if len(name) > MAX_APP_PASSWORD_NAME_LENGTH:
        raise BadRequest(f"The name may be at most {MAX_APP_PASSWORD_NAME_LENGTH} characters.")
    if len(await list_app_passwords(db, user=user)) >= MAX_APP_PASSWORDS:
        raise BadRequest(
            f"You already have {MAX_APP_PASSWORDS} app passwords; revoke one you no longer use."
        )
    secret = new_app_password()
    app_password = AppPassword(
        user_id=user.id,
        name=name,
        password_hash=await hash_secret(_compact(secret)),
        created_at=datetime.now(UTC),
    )
    db.add(app_password)
    await db.flush()
    return app_password, secret


async def list_app_passwords(db: AsyncSession, *, user: User) -> list[AppPassword]:
    rows = await db.scalars(
        select(AppPassword)
        .where(AppPassword.user_id == user.id, AppPassword.revoked_at.is_(None))
        .order_by(AppPassword.created_at.desc(), AppPassword.id.desc())
    )
    return list(rows)


async def revoke_app_password(db: AsyncSession, *, user: User, app_password_id: int) -> AppPassword:
    """Revoke one of `user`'s own app passwords; 404 for anyone else's."""
    app_password = await db.scalar(
        select(AppPassword).where(
            AppPassword.id == app_password_id,
            AppPassword.user_id == user.id,
            AppPassword.revoked_at.is_(None),
        )
    )
    if app_password is None:
        raise NotFound("That app password does not exist or was already revoked.")
    app_password.revoked_at = datetime.now(UTC)
    await db.flush()
    return app_password


async def verify_app_password(db: AsyncSession, *, handle: str, password: str) -> User | None:
    """The account for SMTP/IMAP-style logins: its password or any live app password.

    With two-factor authentication on, the account password alone is not enough (it would
    bypass the second factor): only app passwords open the account. A matching app password
    gets its `last_used_at` set (the caller commits). None for a disabled or unknown account.
    """
    user = await get_user_by_handle(db, handle=handle)
    if user is None:
        await verify_password(passwords.DUMMY_HASH, password)
        return None
    if user.disabled:
        return None
    compact = _compact(password)
    for app_password in await list_app_passwords(db, user=user):
        if await verify_password(app_password.password_hash, compact):
            app_password.last_used_at = datetime.now(UTC)
            await db.flush()
            return user
    if not user.totp_enabled and await verify_password(user.password_hash, password):
        return user
    return None


# --- sessions ------------------------------------------------------------------------------


async def list_sessions(db: AsyncSession, *, user: User) -> list[WebSession]:
    """`user`'s live browser sessions, most recently used first."""
    rows = await db.scalars(
        select(WebSession)
        .where(
            WebSession.user_id == user.id,
            WebSession.revoked_at.is_(None),
            WebSession.expires_at > datetime.now(UTC),
        )
        .order_by(WebSession.last_seen_at.desc())
    )
    return list(rows)


async def revoke_refresh_tokens(
    db: AsyncSession, *, sids: Collection[str] | None = None, user_id: int | None = None
) -> None:
    """Revoke the refresh tokens issued under these sessions (or all of a user's)."""
    query = update(RefreshToken).where(RefreshToken.revoked_at.is_(None))
    if sids is not None:
        if not sids:
            return
        query = query.where(RefreshToken.sid.in_(list(sids)))
    if user_id is not None:
        query = query.where(RefreshToken.user_id == user_id)
    await db.execute(query.values(revoked_at=datetime.now(UTC)))


async def revoke_sessions(
    db: AsyncSession, *, user_id: int, except_session_id: str | None = None
) -> int:
    """End `user_id`'s sessions (but one) and the refresh tokens issued under them."""
    query = select(WebSession.id, WebSession.sid).where(
        WebSession.user_id == user_id, WebSession.revoked_at.is_(None)
    )
    if except_session_id is not None:
        query = query.where(WebSession.id != except_session_id)
    rows = (await db.execute(query)).all()
    if not rows:
        return 0
    await db.execute(
        update(WebSession)
        .where(WebSession.id.in_([row.id for row in rows]))
        .values(revoked_at=datetime.now(UTC))
    )
    await revoke_refresh_tokens(db, sids=[row.sid for row in rows])
    return len(rows)


async def revoke_session_by_sid(db: AsyncSession, *, user: User, sid: str) -> WebSession:
    """End one of `user`'s own sessions by its public id; 404 for anyone else's."""
    web_session = await db.scalar(
        select(WebSession).where(
            WebSession.sid == sid,
            WebSession.user_id == user.id,
            WebSession.revoked_at.is_(None),
        )
    )
    if web_session is None:
        raise NotFound("That session does not exist or has already ended.")
    web_session.revoked_at = datetime.now(UTC)
    await revoke_refresh_tokens(db, sids=[sid])
    await db.flush()
    return web_session


_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
    ("python-httpx/", "a script (httpx)"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def describe_user_agent(user_agent: str) -> str:
    """ "Firefox on Linux" from a User-Agent header, for the sessions list."""
    browser = next((name for token, name in _BROWSERS if token in user_agent), "")
    system = next((name for token, name in _SYSTEMS if token in user_agent), "")
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown browser"
