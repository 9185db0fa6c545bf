"""Compile a parsed query into Core conditions, and keyset cursors on (received_at, id).

Free text and `subject:` use the full-text index of migration 0002: an FTS5 MATCH on SQLite,
`to_tsvector('simple', ...) @@ ...` with the index's exact expression on PostgreSQL (so the GIN
index is used). User words never become query syntax: on SQLite each word is re-tokenised and
written as an FTS5 string literal; on PostgreSQL `plainto_tsquery`/`phraseto_tsquery` take
plain text. The other operators are column conditions.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, column, false, func, literal_column, or_, select
from sqlalchemy import table as sql_table

from VEZEPyCore.errors import BadRequest
from VEZEPyEmail.db.models import Message
from VEZEPyEmail.services.search.parser import SearchQuery

#: The expression of PostgreSQL's ix_messages_search, character for character.
PG_DOCUMENT = (
    "to_tsvector('simple', coalesce(messages.subject, '') || ' ' || "
    "coalesce(messages.from_addr, '') || ' ' || coalesce(messages.to_addrs, '') || ' ' || "
    "coalesce(messages.body_text, ''))"
)
_WORD = re.compile(r"\w+")
_FTS = sql_table("messages_fts", column("rowid"))


def fts5_phrase(value: str) -> str | None:
    """`value` as an FTS5 string literal of its words, or None when it has no words.

    Only word characters survive, joined by spaces inside double quotes: nothing the user
    typed (quotes, `*`, `NEAR(`, `:`, `^`, AND/OR/NOT) can act as FTS5 syntax.
    """
    words = _WORD.findall(value)
    if not words:
        return None
    return '"' + " ".join(words) + '"'


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _sqlite_fulltext(query: SearchQuery) -> ColumnElement[bool] | None:
    parts = [phrase for phrase in map(fts5_phrase, query.text) if phrase]
    parts += [f"subject : {phrase}" for phrase in map(fts5_phrase, query.subject) if phrase]
    if not parts:
        return None
    match = literal_column("messages_fts").op("MATCH")(" AND ".join(parts))
    return Message.id.in_(select(_FTS.c.rowid).where(match))


def _postgres_fulltext(query: SearchQuery) -> ColumnElement[bool] | None:
    conditions: list[ColumnElement[bool]] = []
    document: ColumnElement[Any] = literal_column(PG_DOCUMENT)
    for value in query.text + query.subject:
        if _WORD.search(value):
            plain = " ".join(value.split())
            conditions.append(document.op("@@")(func.phraseto_tsquery("simple", plain)))
    for value in query.subject:
        if _WORD.search(value):
            subject = func.to_tsvector("simple", func.coalesce(Message.subject, ""))
            conditions.append(subject.op("@@")(func.phraseto_tsquery("simple", value)))
    return and_(*conditions) if conditions else None


def conditions_for(query: SearchQuery, *, dialect: str) -> list[ColumnElement[bool]]:
    """WHERE conditions for everything but the mailbox and folder."""
    conditions: list[ColumnElement[bool]] = []
    fulltext = _sqlite_fulltext(query) if dialect == "sqlite" else _postgres_fulltext(query)
    if fulltext is not None:
        conditions.append(fulltext)
    conditions += [Message.from_addr.ilike(_like(value), escape="\\") for value in query.from_]
    conditions += [Message.to_addrs.ilike(_like(value), escape="\\") for value in query.to]
    if query.has_attachment is not None:
        conditions.append(Message.has_attachments.is_(query.has_attachment))
    if query.seen is not None:
        conditions.append(Message.seen.is_(query.seen))
    if query.flagged is not None:
        conditions.append(Message.flagged.is_(query.flagged))
    if query.before is not None:
        conditions.append(Message.received_at < query.before)
    if query.after is not None:
        conditions.append(Message.received_at >= query.after)
    if query.before is not None and query.after is not None and query.after >= query.before:
        conditions.append(false())
    return conditions


@dataclass(frozen=True)
class Cursor:
    """The last row of a page; the next page starts strictly after it (newest first)."""

    received_at: datetime
    id: int

    def encode(self) -> str:
        raw = json.dumps([self.received_at.isoformat(), self.id], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            received_at, message_id = json.loads(raw)
            when = datetime.fromisoformat(received_at)
            if when.tzinfo is None or type(message_id) is not int or not 0 < message_id < 2**31:
                raise ValueError("bad cursor")
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise BadRequest("invalid cursor") from None
        return cls(received_at=when, id=message_id)

    def after(self) -> ColumnElement[bool]:
        return or_(
            Message.received_at < self.received_at,
            and_(Message.received_at == self.received_at, Message.id < self.id),
        )
