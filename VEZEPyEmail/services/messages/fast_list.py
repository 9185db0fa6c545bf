"""The hot read: a folder's newest messages as JSON bytes, on SQLite's inline reader.

`GET /api/messages` without a search is what every client polls; on the embedded default it
runs here instead of through the async ORM session: one compiled Core statement (the mailbox
is resolved in the same statement), a stdlib sqlite3 connection used inline, and orjson.
The output equals the general path's (`service.list_page`) field for field; a test holds them
to that. Searches, the all-folders view and PostgreSQL take the general path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI
from sqlalchemy import Integer, and_, bindparam, or_, select

from VEZEPyCore.db.inline_sqlite import InlineQuery, InlineReader
from VEZEPyCore.errors import BadRequest, NotFound
from VEZEPyEmail.db.models import Mailbox, Message
from VEZEPyEmail.services.messages.service import LIST_COLUMNS
from VEZEPyEmail.services.search.builder import Cursor


def _page_statement(*, after_cursor: bool) -> InlineQuery:
    mailbox_id = select(Mailbox.id).where(Mailbox.address == bindparam("address"))
    statement = (
        select(*LIST_COLUMNS, Message.received_at)
        .where(Message.mailbox_id == mailbox_id.scalar_subquery())
        .where(Message.folder == bindparam("folder"))
        .order_by(Message.received_at.desc(), Message.id.desc())
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )
    if after_cursor:
        after_received = bindparam("after_received", type_=Message.received_at.type)
        statement = statement.where(
            or_(
                Message.received_at < after_received,
                and_(Message.received_at == after_received, Message.id < bindparam("after_id")),
            )
        )
    return InlineQuery(statement)


_FIRST_PAGE = _page_statement(after_cursor=False)
_NEXT_PAGE = _page_statement(after_cursor=True)
_MAILBOX = InlineQuery(select(Mailbox.id).where(Mailbox.address == bindparam("address")))


def _summary(row: list[Any]) -> dict[str, Any]:
    (
        message_id,
        subject,
        from_addr,
        date,
        snippet,
        labels,
        size,
        spam_score,
        seen,
        flagged,
        answered,
        draft,
        thread_id,
        _received_at,
    ) = row
    flags = (("\\Seen", seen), ("\\Flagged", flagged), ("\\Answered", answered), ("\\Draft", draft))
    summary: dict[str, Any] = {
        "id": message_id,
        "subject": subject,
        "from_": from_addr,
        "date": date,
        "snippet": snippet,
        "labels": list(labels or []),
        "flags": [flag for flag, on in flags if on],
        "size": size,
        "spam_score": float(spam_score),
        "unread": not seen,
    }
    if thread_id is not None:  # the general path leaves out what is None
        summary["thread_id"] = thread_id
    return summary


class FastMessageList:
    def __init__(self, reader: InlineReader) -> None:
        self._reader = reader

    def page_json(
        self, *, address: str, folder: str, limit: int, offset: int, cursor: str | None
    ) -> bytes:
        values: dict[str, Any] = {
            "address": address,
            "folder": folder,
            "limit": limit + 1,
            "offset": offset,
        }
        query = _FIRST_PAGE
        if cursor is not None:
            if offset:
                raise BadRequest("use either cursor or offset, not both")
            after = Cursor.decode(cursor)
            values.update(after_received=after.received_at, after_id=after.id)
            query = _NEXT_PAGE
        rows = self._reader.fetch(query, values)
        if not rows and not self._reader.fetch(_MAILBOX, {"address": address}):
            raise NotFound(f"no mailbox for {address}")
        body: dict[str, Any] = {"user": address, "messages": [_summary(r) for r in rows[:limit]]}
        if len(rows) > limit:
            last = rows[limit - 1]
            body["next_cursor"] = Cursor(received_at=last[-1], id=last[0]).encode()
        return orjson.dumps(body, option=orjson.OPT_UTC_Z)


@asynccontextmanager
async def fast_message_list(app: FastAPI) -> AsyncIterator[None]:
    """Start-up hook: the inline reader on SQLite (`app.state.fast_message_list`), else None."""
    reader = InlineReader.for_url(app.state.settings.db_url)
    app.state.fast_message_list = FastMessageList(reader) if reader is not None else None
    try:
        yield
    finally:
        if reader is not None:
            reader.close()
