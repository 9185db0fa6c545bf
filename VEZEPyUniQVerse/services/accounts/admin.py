"""What the admin console does to accounts: find, disable/enable, grant and revoke roles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyCore.errors import BadRequest
from VEZEPyUniQVerse.db.models import User
from VEZEPyUniQVerse.services.accounts.handles import handle_key
from VEZEPyUniQVerse.services.accounts.service import ROLES, revoke_refresh_tokens, revoke_sessions

USERS_PER_PAGE = 25


@dataclass(frozen=True)
class UserPage:
    users: list[User]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


async def search_users(
    db: AsyncSession, *, prefix: str = "", page: int = 1, per_page: int = USERS_PER_PAGE
) -> UserPage:
    """Accounts whose handle starts with `prefix`, in handle order."""
    page = max(1, page)
    query = select(User)
    prefix = handle_key(prefix)
    if prefix:
        query = query.where(User.handle.startswith(prefix, autoescape=True))
    total = await db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await db.scalars(
        query.order_by(User.handle).offset((page - 1) * per_page).limit(per_page)
    )
    return UserPage(users=list(rows), page=page, per_page=per_page, total=total)


async def set_disabled(db: AsyncSession, *, user: User, disabled: bool, by: User) -> int:
    """Disable (ending every session and refresh token) or enable an account.

    Returns how many sessions were ended. Admins cannot disable themselves: the console would
    lock its only way back in.
    """
    if disabled and user.id == by.id:
        raise BadRequest("You cannot disable your own account.")
    user.disabled = disabled
    user.updated_at = datetime.now(UTC)
    ended = 0
    if disabled:
        ended = await revoke_sessions(db, user_id=user.id)
        await revoke_refresh_tokens(db, user_id=user.id)
    await db.flush()
    return ended


async def set_role(db: AsyncSession, *, user: User, role: str, granted: bool, by: User) -> bool:
    """Grant or revoke `role`; returns False when nothing changed."""
    if role not in ROLES:
        raise BadRequest(f"Unknown role {role!r}; roles are {', '.join(ROLES)}.")
    if not granted and role == "admin" and user.id == by.id:
        raise BadRequest("You cannot take the admin role from yourself; ask another admin.")
    roles = list(user.roles)
    if granted == (role in roles):
        return False
    user.roles = [*roles, role] if granted else [r for r in roles if r != role]
    user.updated_at = datetime.now(UTC)
    await db.flush()
    return True
