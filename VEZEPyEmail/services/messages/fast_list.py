"""The hot read: a folder's newest messages as JSON bytes, on SQLite's inline reader.

`GET /api/messages` without a search is what every client polls; on the embedded default it
runs here instead of through the async ORM session: one compiled Core statement (the mailbox
is resolved in the same statement), a stdlib sqlite3 connection used inline, and orjson.
The output equals the general path's (`service.list_page`) field for field; a test holds them
to that. Searches, the all-folders view and PostgreSQL take the general path.

The columns are read as SQLite stores them (ADR 0021): parsing each row's timestamps into
datetimes, its flags into bools and its labels into lists, only to serialise them again, cost
more than the query. Timestamps are rewritten as text into the API's ISO 8601 form, and only
the cursor's timestamp is parsed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import FastAPI
from sqlalchemy import JSON, Boolean, Integer, String, and_, bindparam, or_, select, type_coerce
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.elements import ColumnElement

from VEZEPyCore.db.inline_sqlite import InlineQuery, InlineReader
from VEZEPyCore.db.types import UTCDateTime
from VEZEPyCore.errors import BadRequest, NotFound
from VEZEPyEmail.db.models import Mailbox, Message
from VEZEPyEmail.services.messages.service import LIST_COLUMNS
from VEZEPyEmail.services.search.builder import Cursor


def _stored(column: QueryableAttribute[Any]) -> ColumnElement[Any] | QueryableAttribute[Any]:
    """`column` as SQLite stores it: timestamps and JSON as text, booleans as 0/1.

    `type_coerce` changes only how the result is read; the SQL is the same."""
    if isinstance(column.type, UTCDateTime | JSON):
        return type_coerce(column, String).label(column.key)
    if isinstance(column.type, Boolean):
        return type_coerce(column, Integer).label(column.key)
    return column


def _page_statement(*, after_cursor: bool) -> InlineQuery:
    mailbox_id = select(Mailbox.id).where(Mailbox.address == bindparam("address"))
    statement = (
        select(*(_stored(column) for column in (*LIST_COLUMNS, Message.received_at)))
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


#: The flags list for each combination of (seen, flagged, answered, draft), as bits 8-4-2-1.
_FLAGS: tuple[tuple[str, ...], ...] = tuple(
    tuple(
        name
        for name, bit in (("\\Seen", 8), ("\\Flagged", 4), ("\\Answered", 2), ("\\Draft", 1))
        if bits & bit
    )
    for bits in range(16)
)


def _api_time(stored: str | None) -> str | datetime | None:
    """A stored UTC timestamp in the API's form, as pydantic and orjson write an aware UTC
    datetime: `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`, the fraction only when it is not zero.

    SQLAlchemy keeps `UTCDateTime` on SQLite as `YYYY-MM-DD HH:MM:SS.ffffff` (naive UTC); any
    other spelling is parsed and left to orjson."""
    if stored is None:
        return None
    if len(stored) == 26 and stored[10] == " " and stored[19] == ".":
        if stored.endswith("000000"):
            return f"{stored[:10]}T{stored[11:19]}Z"
        return f"{stored[:10]}T{stored[11:]}Z"
    return _utc(stored)


def _utc(stored: str) -> datetime:
    when = datetime.fromisoformat(stored)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


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
    bits = (8 if seen else 0) | (4 if flagged else 0) | (2 if answered else 0) | (1 if draft else 0)
    summary: dict[str, Any] = {
        "id": message_id,
        "subject": subject,
        "from_": from_addr,
        "date": _api_time(date),
        "snippet": snippet,
        # "[]" is what nearly every row holds: no need to parse it.
        "labels": orjson.loads(labels) if labels and labels != "[]" else [],
        "flags": _FLAGS[bits],
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
            body["next_cursor"] = Cursor(received_at=_utc(last[-1]), id=last[0]).encode()
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
