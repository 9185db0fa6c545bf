"""A mailbox's folders: the six special-use ones (RFC 6154) and the user's own.

Folder names are case-sensitive except INBOX (RFC 3501 section 5.1). Special folders cannot
be renamed or deleted; deleting a user folder moves its messages to Trash first.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from VEZEPyCore.errors import BadRequest, Conflict, NotFound
from VEZEPyEmail.db.models import Folder, Message
from VEZEPyEmail.services.folders.schemas import FolderRead
from VEZEPyEmail.services.mailboxes.service import SPECIAL_FOLDERS

SPECIAL_NAMES = {name for name, _role in SPECIAL_FOLDERS}
TRASH = "Trash"
_ORDER = {name: position for position, (name, _role) in enumerate(SPECIAL_FOLDERS)}


def validate_name(name: str) -> str:
    """A clean folder name, or 400: no control characters, no surrounding blanks."""
    cleaned = name.strip()
    if not cleaned or len(cleaned) > 128:
        raise BadRequest("a folder name is 1-128 characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in cleaned):
        raise BadRequest("a folder name may not contain control characters")
    if cleaned.upper() == "INBOX":
        return "INBOX"
    if cleaned.startswith("/") or cleaned.endswith("/") or "//" in cleaned:
        raise BadRequest("a folder name may not start or end with '/' or contain '//'")
    return cleaned


async def list_folders(connection: AsyncConnection, *, mailbox_id: int) -> list[FolderRead]:
    """Every folder with its total and unread counts (one grouped query, no ORM rows)."""
    counts = (
        await connection.execute(
            select(
                Message.folder,
                func.count().label("total"),
                func.sum(case((Message.seen.is_(False), 1), else_=0)).label("unread"),
            )
            .where(Message.mailbox_id == mailbox_id)
            .group_by(Message.folder)
        )
    ).all()
    by_name = {str(folder): (int(total), int(unread or 0)) for folder, total, unread in counts}
    rows = (
        await connection.execute(
            select(Folder.name, Folder.special_use).where(Folder.mailbox_id == mailbox_id)
        )
    ).all()
    roles: dict[str, str | None] = {str(name): role for name, role in rows}
    for name in by_name:  # messages filed before their folder row existed
        roles.setdefault(name, None)
    folders = [
        FolderRead(
            name=name,
            special_use=role,
            total=by_name.get(name, (0, 0))[0],
            unread=by_name.get(name, (0, 0))[1],
        )
        for name, role in roles.items()
    ]
    folders.sort(key=lambda f: (_ORDER.get(f.name, len(_ORDER)), f.name.lower()))
    return folders


async def folder_exists(session: AsyncSession, *, mailbox_id: int, name: str) -> bool:
    found = await session.scalar(
        select(Folder.id).where(Folder.mailbox_id == mailbox_id, Folder.name == name)
    )
    return found is not None or name in SPECIAL_NAMES


async def ensure_folder(
    session: AsyncSession, *, mailbox_id: int, name: str, special_use: str | None = None
) -> bool:
    """Create the folder unless it exists; safe when other processes create it at once.
    True when this call created it.

    Delivery files into folders a Sieve `fileinto` names, so two SMTP processes may create
    the same missing folder together. A select-then-insert lets both see "missing" and the
    slower one fails the unique constraint (and its delivery answers 451). INSERT .. ON
    CONFLICT DO NOTHING waits for the other writer on PostgreSQL and then does nothing; on
    SQLite writers take turns and the second insert is a no-op. Other databases get a
    savepoint around a plain insert. The caller's transaction commits the row.
    """
    if await session.scalar(
        select(Folder.id).where(Folder.mailbox_id == mailbox_id, Folder.name == name)
    ):
        return False  # the common case: no write, no lock
    values = {
        "mailbox_id": mailbox_id,
        "name": name,
        "special_use": special_use,
        "created_at": datetime.now(UTC),
    }
    dialect = (await session.connection()).dialect.name
    if dialect in ("postgresql", "sqlite"):
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        result = await session.execute(
            insert(Folder)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[Folder.mailbox_id, Folder.name])
        )
        return bool(getattr(result, "rowcount", 0))
    try:
        async with session.begin_nested():
            session.add(Folder(**values))
    except IntegrityError:
        return False  # created by a concurrent writer between our select and insert
    return True


async def require_folder(session: AsyncSession, *, mailbox_id: int, name: str) -> str:
    name = validate_name(name)
    if not await folder_exists(session, mailbox_id=mailbox_id, name=name):
        raise NotFound(f"no folder named {name!r}")
    return name


async def create_folder(session: AsyncSession, *, mailbox_id: int, name: str) -> FolderRead:
    name = validate_name(name)
    # Two requests creating one name at once: one creates it, the other gets the 409 (on
    # SQLite the caller's transaction should be a writer from its start: begin_as_writer).
    if name in SPECIAL_NAMES or not await ensure_folder(session, mailbox_id=mailbox_id, name=name):
        raise Conflict(f"a folder named {name!r} already exists")
    return FolderRead(name=name, special_use=None, total=0, unread=0)


async def rename_folder(
    session: AsyncSession, *, mailbox_id: int, name: str, new_name: str
) -> FolderRead:
    name, new_name = validate_name(name), validate_name(new_name)
    if name in SPECIAL_NAMES:
        raise BadRequest(f"{name} is a special folder and cannot be renamed")
    folder = await session.scalar(
        select(Folder).where(Folder.mailbox_id == mailbox_id, Folder.name == name)
    )
    if folder is None:
        raise NotFound(f"no folder named {name!r}")
    if new_name != name and await folder_exists(session, mailbox_id=mailbox_id, name=new_name):
        raise Conflict(f"a folder named {new_name!r} already exists")
    folder.name = new_name
    await session.execute(
        update(Message)
        .where(Message.mailbox_id == mailbox_id, Message.folder == name)
        .values(folder=new_name)
    )
    await session.flush()
    total, unread = await _counts(session, mailbox_id=mailbox_id, name=new_name)
    return FolderRead(name=new_name, special_use=None, total=total, unread=unread)


async def delete_folder(session: AsyncSession, *, mailbox_id: int, name: str) -> list[int]:
    """Delete a user folder; its messages go to Trash. Returns the moved message ids."""
    name = validate_name(name)
    if name in SPECIAL_NAMES:
        raise BadRequest(f"{name} is a special folder and cannot be deleted")
    folder_id = await session.scalar(
        select(Folder.id).where(Folder.mailbox_id == mailbox_id, Folder.name == name)
    )
    moved = list(
        await session.scalars(
            select(Message.id).where(Message.mailbox_id == mailbox_id, Message.folder == name)
        )
    )
    if folder_id is None and not moved:
        raise NotFound(f"no folder named {name!r}")
    await session.execute(
        update(Message)
        .where(Message.mailbox_id == mailbox_id, Message.folder == name)
        .values(folder=TRASH)
    )
    await session.execute(
        delete(Folder).where(Folder.mailbox_id == mailbox_id, Folder.name == name)
    )
    await session.flush()
    return moved


async def _counts(session: AsyncSession, *, mailbox_id: int, name: str) -> tuple[int, int]:
    row = (
        await session.execute(
            select(func.count(), func.sum(case((Message.seen.is_(False), 1), else_=0))).where(
                Message.mailbox_id == mailbox_id, Message.folder == name
            )
        )
    ).one()
    return int(row[0]), int(row[1] or 0)
