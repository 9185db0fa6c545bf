"""Listing and changing messages. Listing is a hot path: Core statements, no ORM rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import RowMapping, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from VEZEPyCore.errors import BadRequest, NotFound
from VEZEPyEmail.db.models import Mailbox, Message
from VEZEPyEmail.services.messages.schemas import MessageRead, MessageSummaryRead
from VEZEPyEmail.services.search import parser
from VEZEPyEmail.services.search.builder import Cursor, conditions_for
from VEZEPyEmail.services.search.parser import SearchQuery, parse_query

MAX_QUERY_LENGTH = parser.MAX_QUERY_LENGTH

#: A list entry's columns, in the order `to_read` and the inline fast list read them.
LIST_COLUMNS = (
    Message.id,
    Message.subject,
    Message.from_addr,
    Message.date,
    Message.snippet,
    Message.labels,
    Message.size,
    Message.spam_score,
    Message.seen,
    Message.flagged,
    Message.answered,
    Message.draft,
    Message.thread_id,
)


def flags_of(row: RowMapping) -> list[str]:
    names = (
        ("seen", "\\Seen"),
        ("flagged", "\\Flagged"),
        ("answered", "\\Answered"),
        ("draft", "\\Draft"),
    )
    return [flag for column, flag in names if row[column]]


def to_read(row: RowMapping) -> MessageSummaryRead:
    return MessageSummaryRead(
        id=row["id"],
        subject=row["subject"],
        from_=row["from_addr"],
        date=row["date"],
        snippet=row["snippet"],
        labels=list(row["labels"] or []),
        flags=flags_of(row),
        size=row["size"],
        spam_score=row["spam_score"],
        unread=not row["seen"],
        thread_id=row["thread_id"],
    )


async def mailbox_id_for(connection: AsyncConnection, *, address: str) -> int:
    mailbox_id = await connection.scalar(select(Mailbox.id).where(Mailbox.address == address))
    if mailbox_id is None:
        raise NotFound(f"no mailbox for {address}")
    return int(mailbox_id)


async def list_messages(
    connection: AsyncConnection,
    *,
    address: str,
    folder: str,
    limit: int,
    offset: int,
    query: str | None,
) -> list[MessageSummaryRead]:
    """A page of the folder, newest first (see `list_page`)."""
    messages, _ = await list_page(
        connection, address=address, folder=folder, limit=limit, offset=offset, query=query
    )
    return messages


async def list_page(
    connection: AsyncConnection,
    *,
    address: str,
    folder: str,
    limit: int,
    offset: int = 0,
    query: str | None = None,
    cursor: str | None = None,
) -> tuple[list[MessageSummaryRead], str | None]:
    """A page of the folder, newest first, and the cursor of the next page (None at the end).

    `query` is the search language of `services/search`; its `in:` overrides `folder`.
    """
    search = parse_query(query) if query else SearchQuery()
    after = Cursor.decode(cursor) if cursor else None
    if after is not None and offset:
        raise BadRequest("use either cursor or offset, not both")
    mailbox_id = await mailbox_id_for(connection, address=address)
    target = search.folder or folder
    statement = (
        select(*LIST_COLUMNS, Message.received_at)
        .where(Message.mailbox_id == mailbox_id)
        .order_by(Message.received_at.desc(), Message.id.desc())
        .limit(limit + 1)
        .offset(offset)
    )
    if target != "*":
        statement = statement.where(Message.folder == target)
    conditions = conditions_for(search, dialect=connection.dialect.name)
    if after is not None:
        conditions.append(after.after())
    if conditions:
        statement = statement.where(*conditions)
    rows = (await connection.execute(statement)).mappings().all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = Cursor(received_at=last["received_at"], id=last["id"]).encode()
    return [to_read(row) for row in rows], next_cursor


async def get_message(connection: AsyncConnection, *, message_id: int) -> tuple[MessageRead, str]:
    """The message and its mailbox's address (the caller authorises against it)."""
    statement = (
        select(*LIST_COLUMNS, Mailbox.address)
        .join(Mailbox, Mailbox.id == Message.mailbox_id)
        .where(Message.id == message_id)
    )
    row = (await connection.execute(statement)).mappings().one_or_none()
    if row is None:
        raise NotFound("no such message")
    return to_read(row), str(row["address"])


async def owner_of(session: AsyncSession, *, message_id: int) -> str:
    statement = (
        select(Mailbox.address)
        .join(Message, Message.mailbox_id == Mailbox.id)
        .where(Message.id == message_id)
    )
    address = await session.scalar(statement)
    if address is None:
        raise NotFound("no such message")
    return str(address)


async def update_message(session: AsyncSession, *, message_id: int, values: dict[str, Any]) -> None:
    await session.execute(update(Message).where(Message.id == message_id).values(**values))
