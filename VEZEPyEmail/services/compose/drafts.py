"""Drafts are real messages: a row in the Drafts folder with \\Draft (and \\Seen), whose raw
bytes live in the blob store like any other message, so they list, search and thread as mail.

A draft keeps its id across saves: a save stores the new bytes and points the row at them.
It has no Message-ID (each send mints one), so the per-mailbox Message-ID guard never sees it.
Functions only flush; the router commits, then publishes the event.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyEmail.db.models import Message
from VEZEPyEmail.services.folders.service import ensure_folder
from VEZEPyEmail.services.messages.mime import summarise
from VEZEPyEmail.services.store.blobs import BlobStore
from VEZEPyEmail.services.threads.service import resolve_thread_id

DRAFTS = "Drafts"


async def _columns(
    session: AsyncSession, *, mailbox_id: int, raw: bytes, key: str
) -> dict[str, object]:
    summary = summarise(raw)
    now = datetime.now(UTC)
    # A reply draft sits in its conversation, found the way delivery finds it.
    thread_id = await resolve_thread_id(session, mailbox_id=mailbox_id, summary=summary)
    return {
        "subject": summary.subject,
        "from_addr": summary.from_addr,
        "to_addrs": summary.to_addrs,
        "cc_addrs": summary.cc_addrs,
        "date": summary.date or now,
        "received_at": now,
        "snippet": summary.snippet,
        "body_text": summary.body_text,
        "size": len(raw),
        "blob_key": key,
        "in_reply_to": summary.in_reply_to,
        "references_header": summary.references_header,
        "thread_id": thread_id,
        "has_attachments": summary.has_attachments,
    }


async def create_draft(
    session: AsyncSession, blobs: BlobStore, *, mailbox_id: int, raw: bytes, address: str
) -> int:
    key = await blobs.put(raw)
    await ensure_folder(session, mailbox_id=mailbox_id, name=DRAFTS, special_use="drafts")
    row = Message(
        mailbox_id=mailbox_id,
        folder=DRAFTS,
        message_id_header=None,
        seen=True,
        draft=True,
        flagged=False,
        answered=False,
        spam_score=0.0,
        labels=[],
        envelope_from=address,
        auth_results="",
        **await _columns(session, mailbox_id=mailbox_id, raw=raw, key=key),
    )
    session.add(row)
    await session.flush()
    return row.id


async def replace_draft(
    session: AsyncSession, blobs: BlobStore, *, draft_id: int, mailbox_id: int, raw: bytes
) -> None:
    key = await blobs.put(raw)
    values = await _columns(session, mailbox_id=mailbox_id, raw=raw, key=key)
    await session.execute(update(Message).where(Message.id == draft_id).values(**values))
    await session.flush()


async def remove_draft(session: AsyncSession, *, draft_id: int) -> bool:
    """Drafts are purged, not moved to Trash: the sent message or nothing replaces them.

    False when there was no such draft (already sent or discarded by another request)."""
    result = await session.execute(
        delete(Message).where(Message.id == draft_id, Message.draft.is_(True))
    )
    await session.flush()
    return bool(getattr(result, "rowcount", 0))
