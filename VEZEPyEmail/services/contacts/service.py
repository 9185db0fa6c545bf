"""Contacts are the addresses of the caller's own recent mail: the From of what they received,
the To and Cc of everything. Nothing is stored: each query looks at a bounded window of the
newest messages (Core statements on the list index), filtered in SQL by the query first.

A suggestion matches when the address, or a word of its display name, starts with the query
(case-insensitive). Most frequent first; the caller's own address is never suggested.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from email.utils import getaddresses

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from VEZEPyEmail.db.models import Message
from VEZEPyEmail.services.contacts.schemas import ContactRead

#: How many of the newest messages one query looks at.
SCAN_LIMIT = 5000
MAX_RESULTS = 20


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _matches(query: str, address: str, name: str) -> bool:
    if address.startswith(query):
        return True
    words = name.lower().replace('"', " ").split()
    return any(word.startswith(query) for word in words) or name.lower().startswith(query)


async def suggest(
    connection: AsyncConnection, *, mailbox_id: int, own: str, query: str, limit: int
) -> list[ContactRead]:
    query = query.strip().lower()
    # The newest messages only (the mailbox/folder/received index serves this), so one query
    # reads a bounded number of rows however large the mailbox; Junk senders are no contacts.
    window = (
        select(Message.from_addr, Message.to_addrs, Message.cc_addrs, Message.received_at)
        .where(Message.mailbox_id == mailbox_id, Message.folder != "Junk")
        .order_by(Message.received_at.desc())
        .limit(SCAN_LIMIT)
        .subquery()
    )
    columns = (window.c.from_addr, window.c.to_addrs, window.c.cc_addrs)
    statement = select(*columns).order_by(window.c.received_at.desc())
    if query:
        pattern = f"%{_escape_like(query)}%"
        statement = statement.where(
            or_(*(func.lower(column).like(pattern, escape="\\") for column in columns))
        )
    counts: Counter[str] = Counter()
    names: dict[str, str] = {}
    own = own.lower()
    for row in (await connection.execute(statement)).all():
        values = [value for value in row if value]
        with contextlib.suppress(Exception):
            for name, address in getaddresses(values):
                address = address.strip().lower()
                if "@" not in address or address == own or len(address) > 320:
                    continue
                counts[address] += 1
                name = " ".join(name.split())[:200]
                if name and address not in names:
                    names[address] = name  # rows come newest first: the latest name wins
    found = [
        ContactRead(address=address, name=names.get(address, ""), count=count)
        for address, count in counts.items()
        if not query or _matches(query, address, names.get(address, ""))
    ]
    found.sort(key=lambda item: (-item.count, item.address))
    return found[: max(1, min(limit, MAX_RESULTS))]
