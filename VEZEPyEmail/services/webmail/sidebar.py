"""The folder sidebar: every folder with its unread count, cheap enough for every live event.

Only unread rows are counted (through a partial index, migration 0006), so the cost follows
the number of unread messages, not the size of the mailbox.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from VEZEPyEmail.db.models import Folder, Message
from VEZEPyEmail.services.mailboxes.service import SPECIAL_FOLDERS

_ORDER = {name: position for position, (name, _role) in enumerate(SPECIAL_FOLDERS)}


DRAFTS = "Drafts"


@dataclass(frozen=True)
class SidebarFolder:
    name: str
    special_use: str | None
    unread: int
    #: What the sidebar shows beside the name: unread messages, or for Drafts every draft
    #: (drafts are never unread, and "3 drafts waiting" is what a writer wants to see).
    badge: int


async def sidebar_folders(connection: AsyncConnection, *, mailbox_id: int) -> list[SidebarFolder]:
    unread_rows = await connection.execute(
        select(Message.folder, func.count())
        .where(Message.mailbox_id == mailbox_id, Message.seen.is_(False))
        .group_by(Message.folder)
    )
    unread = {str(folder): int(count) for folder, count in unread_rows}
    roles: dict[str, str | None] = {
        str(name): role
        for name, role in await connection.execute(
            select(Folder.name, Folder.special_use).where(Folder.mailbox_id == mailbox_id)
        )
    }
    for name in unread:  # messages filed before their folder row existed
        roles.setdefault(name, None)
    drafts = await connection.scalar(
        select(func.count()).where(Message.mailbox_id == mailbox_id, Message.folder == DRAFTS)
    )
    folders = [
        SidebarFolder(
            name,
            role,
            unread.get(name, 0),
            int(drafts or 0) if name == DRAFTS else unread.get(name, 0),
        )
        for name, role in roles.items()
    ]
    folders.sort(key=lambda folder: (_ORDER.get(folder.name, len(_ORDER)), folder.name.lower()))
    return folders
