"""Listing and changing messages. Listing is a hot path: Core statements, no ORM rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import RowMapping, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from VEZEPyCore.errors import NotFound
from VEZEPyEmail.db.models import Mailbox, Message
from VEZEPyEmail.services.messages.schemas import MessageRead

MAX_QUERY_LENGTH = 200

_LIST_COLUMNS = (
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
)


def _flags(row: RowMapping) -> list[str]:
    names = (
        ("seen", "\\Seen"),
        ("flagged", "\\Flagged"),
        ("answered", "\\Answered"),
        ("draft", "\\Draft"),
    )
    return [flag for column, flag in names if row[column]]


def to_read(row: RowMapping) -> MessageRead:
    return MessageRead(
        id=row["id"],
        subject=row["subject"],
        from_=row["from_addr"],
        date=row["date"],
        snippet=row["snippet"],
        labels=list(row["labels"] or []),
        flags=_flags(row),
        size=row["size"],
        spam_score=row["spam_score"],
        unread=not row["seen"],
    )


async def mailbox_id_for(connection: AsyncConnection, *, address: str) -> int:
    mailbox_id = await connection.scalar(select(Mailbox.id).where(Mailbox.address == address))
    if mailbox_id is None:
        raise NotFound(f"no mailbox for {address}")
    return int(mailbox_id)


def _like_pattern(query: str) -> str:
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_messages(
    connection: AsyncConnection,
    *,
    address: str,
    folder: str,
    limit: int,
    offset: int,
    query: str | None,
) -> list[MessageRead]:
    mailbox_id = await mailbox_id_for(connection, address=address)
    statement = (
        select(*_LIST_COLUMNS)
        .where(Message.mailbox_id == mailbox_id, Message.folder == folder)
        .order_by(Message.received_at.desc(), Message.id.desc())
        .limit(limit)
        .offset(offset)
    )
    if query:
        pattern = _like_pattern(query)
        statement = statement.where(
            or_(
                Message.subject.ilike(pattern, escape="\\"),
                Message.from_addr.ilike(pattern, escape="\\"),
                Message.snippet.ilike(pattern, escape="\\"),
            )
        )
    result = await connection.execute(statement)
    return [to_read(row) for row in result.mappings()]


async def get_message(connection: AsyncConnection, *, message_id: int) -> tuple[MessageRead, str]:
    """The message and its mailbox's address (the caller authorises against it)."""
    statement = (
        select(*_LIST_COLUMNS, Mailbox.address)
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
