"""Which conversation a message joins at delivery, and a conversation's messages.

The thread id is the Message-ID of the conversation's first message: the first entry of
References, else In-Reply-To, else the message's own Message-ID (services/messages/mime.py).
Clients often trim References, so at delivery a message whose parent is already in the same
mailbox joins the parent's thread instead (nearest referenced message first), and replies
that arrived before their parent follow it into its conversation.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from VEZEPyCore.errors import NotFound
from VEZEPyEmail.db.models import Message
from VEZEPyEmail.services.messages.mime import Summary, message_ids
from VEZEPyEmail.services.messages.service import LIST_COLUMNS, to_read
from VEZEPyEmail.services.threads.schemas import ThreadMessageRead

#: How many referenced Message-IDs are looked up (the nearest ones).
MAX_PARENTS = 50
MAX_THREAD_MESSAGES = 500


async def resolve_thread_id(
    session: AsyncSession, *, mailbox_id: int, summary: Summary
) -> str | None:
    """The thread a new message of this mailbox belongs to."""
    parents = list(reversed(message_ids(summary.references_header)))
    if summary.in_reply_to is not None:
        parents.insert(0, summary.in_reply_to)
    parents = list(dict.fromkeys(parents))[:MAX_PARENTS]
    if not parents:
        return summary.thread_id
    rows = (
        await session.execute(
            select(Message.message_id_header, Message.thread_id).where(
                Message.mailbox_id == mailbox_id,
                Message.message_id_header.in_(parents),
                Message.thread_id.is_not(None),
            )
        )
    ).all()
    known = {str(message_id): str(thread) for message_id, thread in rows}
    for parent in parents:
        if parent in known:
            return known[parent]
    return summary.thread_id


async def join_thread(session: AsyncSession, *, mailbox_id: int, summary: Summary) -> str | None:
    """Resolve the new message's thread, and bring along replies that arrived before it.

    A reply that came first, naming only this message, got this message's Message-ID as its
    thread id; now that the message is here and belongs to an older conversation, those
    replies move to that conversation too.
    """
    thread_id = await resolve_thread_id(session, mailbox_id=mailbox_id, summary=summary)
    own = summary.message_id_header
    if own is not None and thread_id is not None and thread_id != own:
        await session.execute(
            update(Message)
            .where(Message.mailbox_id == mailbox_id, Message.thread_id == own)
            .values(thread_id=thread_id)
        )
    return thread_id


def normalise_thread_id(value: str) -> str:
    """Accept the id with or without its angle brackets (they are awkward in URLs)."""
    value = value.strip()
    return value if value.startswith("<") else f"<{value}>"


async def thread_messages(
    connection: AsyncConnection, *, mailbox_id: int, thread_id: str, include_trash: bool
) -> list[ThreadMessageRead]:
    """The conversation's messages in this mailbox, oldest first; 404 when there are none."""
    # The list's own columns and row mapping: a thread shows exactly the list's summary.
    statement = (
        select(*LIST_COLUMNS, Message.folder)
        .where(Message.mailbox_id == mailbox_id, Message.thread_id == thread_id)
        .order_by(Message.date, Message.received_at, Message.id)
        .limit(MAX_THREAD_MESSAGES)
    )
    if not include_trash:
        statement = statement.where(Message.folder != "Trash")
    rows = (await connection.execute(statement)).mappings().all()
    if not rows:
        raise NotFound("no such conversation")
    return [
        ThreadMessageRead(**to_read(row).model_dump(), folder=str(row["folder"])) for row in rows
    ]
