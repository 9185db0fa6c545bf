"""Changing one message: move, copy, flags, delete to Trash and purge.

Each function only flushes; the router commits and then publishes the event.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyEmail.db.models import Message
from VEZEPyEmail.services.folders.service import TRASH, require_folder

FLAG_COLUMNS = {
    "\\Seen": "seen",
    "\\Flagged": "flagged",
    "\\Answered": "answered",
    "\\Draft": "draft",
}


async def move_message(
    session: AsyncSession, *, message_id: int, mailbox_id: int, folder: str
) -> str:
    folder = await require_folder(session, mailbox_id=mailbox_id, name=folder)
    await session.execute(update(Message).where(Message.id == message_id).values(folder=folder))
    await session.flush()
    return folder


async def copy_message(
    session: AsyncSession, *, message_id: int, mailbox_id: int, folder: str
) -> int:
    """A new row in `folder` pointing at the same blob.

    The copy has no Message-ID of its own: the unique (mailbox, Message-ID) index keeps one
    row per Message-ID for duplicate suppression; the thread id still groups the copy.
    """
    folder = await require_folder(session, mailbox_id=mailbox_id, name=folder)
    original = await session.get(Message, message_id)
    assert original is not None
    columns: dict[str, Any] = {
        column.key: getattr(original, column.key)
        for column in Message.__table__.columns
        if column.key not in ("id", "folder", "message_id_header")
    }
    copy = Message(**columns, folder=folder, message_id_header=None)
    copy.labels = list(original.labels or [])
    session.add(copy)
    await session.flush()
    return copy.id


async def change_flags(
    session: AsyncSession, *, message_id: int, add: list[str], remove: list[str]
) -> None:
    values: dict[str, bool] = {FLAG_COLUMNS[flag]: False for flag in remove}
    values.update({FLAG_COLUMNS[flag]: True for flag in add})  # add wins over remove
    if values:
        await session.execute(update(Message).where(Message.id == message_id).values(**values))
        await session.flush()


async def delete_message(session: AsyncSession, *, message_id: int) -> bool:
    """Move to Trash, or purge the row when it is already there. True when purged.

    The blob stays: other rows (copies, other recipients) may share it; an unreferenced blob
    is harmless and a later sweep may collect it.
    """
    folder = await session.scalar(select(Message.folder).where(Message.id == message_id))
    if folder == TRASH:
        await session.execute(delete(Message).where(Message.id == message_id))
        await session.flush()
        return True
    await session.execute(update(Message).where(Message.id == message_id).values(folder=TRASH))
    await session.flush()
    return False
