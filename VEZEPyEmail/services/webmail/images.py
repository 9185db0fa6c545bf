"""Remote images: blocked until the person allows them for one message or for one sender.

Loading a remote image tells its sender that (and when, and from where) the mail was read,
so the default is to block; the choice is remembered in `webmail_image_allowances`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from VEZEPyEmail.db.webmail import ImageAllowance

Scope = Literal["message", "sender"]


async def images_allowed(
    connection: AsyncConnection, *, mailbox_id: int, message_id: int, sender: str
) -> bool:
    wanted = [and_(ImageAllowance.kind == "message", ImageAllowance.value == str(message_id))]
    if sender:
        wanted.append(and_(ImageAllowance.kind == "sender", ImageAllowance.value == sender))
    statement = (
        select(ImageAllowance.id)
        .where(ImageAllowance.mailbox_id == mailbox_id, or_(*wanted))
        .limit(1)
    )
    return (await connection.scalar(statement)) is not None


async def allow_images(
    session: AsyncSession, *, mailbox_id: int, scope: Scope, message_id: int, sender: str
) -> None:
    """Remember the choice (idempotent); the caller commits."""
    value = str(message_id) if scope == "message" or not sender else sender
    kind = scope if sender else "message"
    existing = await session.scalar(
        select(ImageAllowance.id).where(
            ImageAllowance.mailbox_id == mailbox_id,
            ImageAllowance.kind == kind,
            ImageAllowance.value == value,
        )
    )
    if existing is None:
        session.add(
            ImageAllowance(
                mailbox_id=mailbox_id, kind=kind, value=value, created_at=datetime.now(UTC)
            )
        )
        await session.flush()
