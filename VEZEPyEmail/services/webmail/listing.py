"""The rows of the message list and of a conversation, read with Core statements.

The list is the hot path of the webmail: one indexed, keyset-paginated query per page (the
same `Cursor` as the JSON API), no ORM objects, so a folder of 100,000 messages pages as fast
as a folder of ten.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr

from sqlalchemy import RowMapping, select
from sqlalchemy.ext.asyncio import AsyncConnection

from VEZEPyCore.errors import NotFound
from VEZEPyEmail.db.models import Message
from VEZEPyEmail.services.search.builder import Cursor, conditions_for
from VEZEPyEmail.services.search.parser import SearchQuery, parse_query

PAGE_SIZE = 50
#: A conversation longer than this shows its newest messages only.
MAX_THREAD = 100

_COLUMNS = (
    Message.id,
    Message.folder,
    Message.subject,
    Message.from_addr,
    Message.to_addrs,
    Message.date,
    Message.received_at,
    Message.snippet,
    Message.labels,
    Message.seen,
    Message.flagged,
    Message.answered,
    Message.has_attachments,
    Message.thread_id,
)


@dataclass(frozen=True)
class Row:
    id: int
    folder: str
    subject: str
    sender_name: str
    sender_address: str
    recipients: str
    date: datetime
    received_at: datetime
    snippet: str
    labels: list[str]
    unread: bool
    flagged: bool
    answered: bool
    has_attachments: bool
    thread_id: str | None


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    next_cursor: str | None


def display_name(address_field: str) -> tuple[str, str]:
    """("Mallory", "m@example.org") from "Mallory <m@example.org>"; the address when unnamed."""
    name, address = parseaddr(address_field)
    address = address.lower()
    return (name.strip() or address or address_field.strip() or "(unknown sender)"), address


def _row(mapping: RowMapping) -> Row:
    name, address = display_name(mapping["from_addr"])
    return Row(
        id=mapping["id"],
        folder=mapping["folder"],
        subject=mapping["subject"],
        sender_name=name,
        sender_address=address,
        recipients=mapping["to_addrs"],
        date=mapping["date"],
        received_at=mapping["received_at"],
        snippet=mapping["snippet"],
        labels=list(mapping["labels"] or []),
        unread=not mapping["seen"],
        flagged=bool(mapping["flagged"]),
        answered=bool(mapping["answered"]),
        has_attachments=bool(mapping["has_attachments"]),
        thread_id=mapping["thread_id"],
    )


async def list_rows(
    connection: AsyncConnection,
    *,
    mailbox_id: int,
    folder: str,
    query: str | None = None,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> Page:
    """One page of `folder` (or of the search, whose `in:` wins over `folder`), newest first."""
    search = parse_query(query) if query else SearchQuery()
    target = search.folder or folder
    statement = (
        select(*_COLUMNS)
        .where(Message.mailbox_id == mailbox_id)
        .order_by(Message.received_at.desc(), Message.id.desc())
        .limit(limit + 1)
    )
    if target != "*":
        statement = statement.where(Message.folder == target)
    conditions = conditions_for(search, dialect=connection.dialect.name)
    if cursor:
        conditions.append(Cursor.decode(cursor).after())
    if conditions:
        statement = statement.where(*conditions)
    mappings = (await connection.execute(statement)).mappings().all()
    next_cursor = None
    if len(mappings) > limit:
        mappings = mappings[:limit]
        last = mappings[-1]
        next_cursor = Cursor(received_at=last["received_at"], id=last["id"]).encode()
    return Page([_row(mapping) for mapping in mappings], next_cursor)


async def get_row(connection: AsyncConnection, *, mailbox_id: int, message_id: int) -> Row:
    """One row of this mailbox; 404 for anything else (other people's ids stay private)."""
    statement = select(*_COLUMNS).where(Message.id == message_id, Message.mailbox_id == mailbox_id)
    mapping = (await connection.execute(statement)).mappings().one_or_none()
    if mapping is None:
        raise NotFound("no such message")
    return _row(mapping)


async def conversation(connection: AsyncConnection, *, mailbox_id: int, row: Row) -> list[Row]:
    """The messages of `row`'s thread in this mailbox, oldest first, `row` among them.

    Trash and Junk join the conversation only when the opened message is there itself.
    """
    if not row.thread_id:
        return [row]
    statement = (
        select(*_COLUMNS)
        .where(Message.mailbox_id == mailbox_id, Message.thread_id == row.thread_id)
        .order_by(Message.received_at.desc(), Message.id.desc())
        .limit(MAX_THREAD)
    )
    if row.folder not in ("Trash", "Junk"):
        statement = statement.where(Message.folder.not_in(("Trash", "Junk")))
    rows = [_row(mapping) for mapping in (await connection.execute(statement)).mappings()]
    if all(item.id != row.id for item in rows):
        rows.append(row)
    rows.sort(key=lambda item: (item.received_at, item.id))
    return rows
