"""Local delivery: store the raw message once, durably, and file it in each local mailbox.

The SMTP layer replies 250 only after `deliver_local` returns (RFC 5321 section 4.2.5: the
server takes responsibility for the message with that reply), so the blob is fsynced and the
rows are committed before it returns. Events go out after the commit.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyCore.db.engine import begin_as_writer
from VEZEPyCore.events.bus import EventBus
from VEZEPyEmail.db.models import Mailbox, Message
from VEZEPyEmail.services.delivery.directory import directory_of
from VEZEPyEmail.services.folders.service import ensure_folder
from VEZEPyEmail.services.messages.mime import (
    MAX_HEADER_FIELD,
    MAX_PARSE_LINES,
    Summary,
    clean_text,
    summarise,
)
from VEZEPyEmail.services.sieve import delivery as sieve
from VEZEPyEmail.services.store.blobs import BlobStore
from VEZEPyEmail.services.threads.service import join_thread
from VEZEPyEmail.streaming.events import publish_mail_event

log = logging.getLogger(__name__)

#: RFC 5322 section 3.6.8: a field name is printable US-ASCII except the colon.
_FIELD_NAME = re.compile(r"[!-9;-~]{1,76}")
_UNSAFE = re.compile(r"[\r\n\x00]")


class DeliveryRefused(ValueError):
    """The message cannot be accepted as given (the SMTP layer answers 5xx)."""


class MessageTooLarge(DeliveryRefused):
    """Larger than `max_message_bytes` (RFC 1870 SIZE; SMTP 552 5.3.4)."""


class DeliveryState(Protocol):
    """What delivery needs: `app.state` of the Email service satisfies it."""

    sessionmaker: async_sessionmaker[AsyncSession]
    blobs: BlobStore
    bus: EventBus
    settings: Any


@dataclass(frozen=True)
class DeliveryContext:
    """A DeliveryState outside a running app (workers, tests)."""

    sessionmaker: async_sessionmaker[AsyncSession]
    blobs: BlobStore
    bus: EventBus
    settings: Any


@dataclass(frozen=True)
class DeliveredMessage:
    """One recipient's copy. `duplicate`: that mailbox already had this Message-ID."""

    id: int
    address: str
    folder: str
    blob_key: str
    duplicate: bool = False


def header_block(headers: Sequence[tuple[str, str]]) -> bytes:
    """Render trace headers as raw CRLF lines (RFC 5322 section 2.2).

    A value may be folded (CRLF + WSP); a CRLF followed by anything else is turned into a
    fold, and bare CR, LF or NUL become spaces, so a value built from remote input (HELO
    names, DNS answers) can never start a header line of its own.
    """
    lines: list[bytes] = []
    for name, value in headers:
        if not _FIELD_NAME.fullmatch(name):
            raise DeliveryRefused(f"invalid header field name {name!r}")
        first, *rest = (_UNSAFE.sub(" ", line) for line in value.split("\r\n"))
        continued = [line if line[:1] in (" ", "\t") else " " + line for line in rest]
        # RFC 5322 section 3.2.2: a folded line may not consist of white space only.
        rendered = "\r\n".join([first, *(line for line in continued if line.strip())])
        line = f"{name}: {rendered}\r\n"
        try:
            lines.append(line.encode("utf-8", "surrogateescape"))
        except UnicodeEncodeError:  # a lone surrogate that is no escaped byte
            lines.append(line.encode("utf-8", "replace"))
    return b"".join(lines)


#: A header field's start (RFC 5322 section 2.2: printable US-ASCII name, then a colon).
_FIELD_START = re.compile(rb"[!-9;-~]{1,76}:")
#: More lines than the trace fields delivery prepends ever take, folded.
_TRACE_LINES_AT_MOST = 1_000


def summary_carries_over(raw: bytes) -> bool:
    """True when the trace fields delivery prepends cannot change how `raw` reads.

    They are whole fields, and the summary reads none of them; only a message that does not
    open with a field of its own (a continuation line, or no header block) could be read
    differently once they stand above it, or one so near the parser's line bound that the
    few added lines would tip it over (mime.MAX_PARSE_LINES).
    """
    if _FIELD_START.match(raw) is None:
        return False
    return raw.count(b"\n") < MAX_PARSE_LINES - _TRACE_LINES_AT_MOST


def _normalise(address: str) -> str:
    return address.strip().strip("<>").strip().lower()


async def local_mailbox_exists(state: DeliveryState | Any, address: str) -> bool:
    """True when `address` has a mailbox here (case-insensitive)."""
    address = _normalise(address)
    return address in await directory_of(state.sessionmaker).known([address])


def _now() -> datetime:
    return datetime.now(UTC)


async def deliver_local(
    state: DeliveryState | Any,
    *,
    raw: bytes,
    envelope_from: str,
    recipients: list[str],
    folder: str = "INBOX",
    seen: bool = False,
    prepend_headers: Sequence[tuple[str, str]] = (),
    spam_score: float = 0.0,
) -> list[DeliveredMessage]:
    """Store `raw` (after `prepend_headers`) once and file it for each local recipient.

    Returns one entry per stored copy: usually one per recipient mailbox that exists, none
    for a recipient whose Sieve rules discarded or redirected it, several for rules that
    file it into several folders (services/sieve). Unknown recipients are skipped (the SMTP
    layer refuses them at RCPT time). Raises DeliveryRefused for input that must
    not be stored; anything else about the message (bad MIME, NUL bytes, ...) is accepted.
    """
    prepared = await prepare_delivery(
        state,
        raw=raw,
        envelope_from=envelope_from,
        recipients=recipients,
        folder=folder,
        seen=seen,
        prepend_headers=prepend_headers,
        spam_score=spam_score,
    )
    if prepared is None:
        return []  # nobody here to deliver to: store nothing
    sessionmaker: async_sessionmaker[AsyncSession] = state.sessionmaker
    async with sessionmaker() as session:
        await begin_as_writer(session)
        delivered = await file_delivery(session, state, prepared)
        await session.commit()
    await finish_delivery(state, prepared, delivered)
    return delivered


@dataclass(frozen=True)
class PreparedDelivery:
    """A message whose blob is durable, ready to be filed (services/delivery/group_commit)."""

    stored: bytes
    key: str
    summary: Summary
    addresses: list[str]
    envelope_from: str
    folder: str
    seen: bool
    prepend_headers: Sequence[tuple[str, str]]
    spam_score: float
    now: datetime


async def prepare_delivery(
    state: DeliveryState | Any,
    *,
    raw: bytes,
    envelope_from: str,
    recipients: list[str],
    folder: str = "INBOX",
    seen: bool = False,
    prepend_headers: Sequence[tuple[str, str]] = (),
    spam_score: float = 0.0,
    summary: Summary | None = None,
    received_at: datetime | None = None,
) -> PreparedDelivery | None:
    """Validate, and fsync the blob; None when no recipient has a mailbox here.

    `summary`: the summary of `raw`, when the caller has it and `summary_carries_over(raw)`
    (it then stands for the stored bytes', trace headers and all). `received_at`: when the
    message arrived, if earlier than now (accepted by the MX, delivered from its intake).
    """
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise DeliveryRefused("the message must be bytes")
    if not folder or len(folder) > 128:
        raise DeliveryRefused("invalid folder name")
    stored = header_block(prepend_headers) + bytes(raw)
    settings = state.settings
    limit = getattr(settings, "max_message_bytes", None)
    if isinstance(limit, int) and len(raw) > limit:
        raise MessageTooLarge(f"message exceeds {limit} bytes")
    addresses = list(dict.fromkeys(_normalise(r) for r in recipients if r.strip()))
    blobs: BlobStore = state.blobs
    if not await directory_of(state.sessionmaker).known(addresses):
        return None
    key = await blobs.put(stored)  # durable before any row points at it
    return PreparedDelivery(
        stored=stored,
        key=key,
        summary=summary if summary is not None else summarise(stored),
        addresses=addresses,
        envelope_from=envelope_from,
        folder=folder,
        seen=seen,
        prepend_headers=prepend_headers,
        spam_score=spam_score,
        now=received_at or _now(),
    )


async def file_delivery(
    session: AsyncSession, state: DeliveryState | Any, prepared: PreparedDelivery
) -> list[DeliveredMessage]:
    """Add the rows of `prepared`, and queue what the recipients' rules send on, in the
    caller's writer transaction; the caller commits."""
    stored, key, summary = prepared.stored, prepared.key, prepared.summary
    addresses, envelope_from = prepared.addresses, prepared.envelope_from
    folder, seen = prepared.folder, prepared.seen
    settings = state.settings
    delivered: list[DeliveredMessage] = []
    mailboxes = (
        await session.execute(
            select(Mailbox.id, Mailbox.address).where(Mailbox.address.in_(addresses))
        )
    ).all()
    for mailbox_id, address in sorted(mailboxes, key=lambda row: addresses.index(row[1])):
        if summary.message_id_header is not None:
            existing = await session.scalar(
                select(Message.id).where(
                    Message.mailbox_id == mailbox_id,
                    Message.message_id_header == summary.message_id_header,
                )
            )
            if existing is not None:
                delivered.append(DeliveredMessage(existing, address, folder, key, duplicate=True))
                continue
        # The user's Sieve rules decide the copies (none when discarded or redirected).
        plan = await sieve.plan_delivery(
            session,
            mailbox_id=mailbox_id,
            address=address,
            stored=stored,
            envelope_from=envelope_from,
            folder=folder,
            seen=seen,
            settings=settings,
            programs=sieve.cache_on(state),
        )
        await sieve.queue_followups(
            session, state, plan, stored=stored, envelope_from=envelope_from
        )
        thread_id = await join_thread(session, mailbox_id=mailbox_id, summary=summary)
        for index, copy in enumerate(plan.copies):
            message_id_header = summary.message_id_header if index == 0 else None
            await ensure_folder(session, mailbox_id=mailbox_id, name=copy.folder)
            row = Message(
                **message_values(
                    prepared,
                    mailbox_id=mailbox_id,
                    copy=copy,
                    message_id_header=message_id_header,
                    thread_id=thread_id,
                )
            )
            try:
                async with session.begin_nested():
                    session.add(row)
                    await session.flush()
            except IntegrityError:
                # A concurrent delivery of the same Message-ID won the race.
                existing = await session.scalar(
                    select(func.min(Message.id)).where(
                        Message.mailbox_id == mailbox_id,
                        Message.message_id_header == message_id_header,
                    )
                )
                if existing is None:
                    raise
                delivered.append(
                    DeliveredMessage(existing, address, copy.folder, key, duplicate=True)
                )
                continue
            delivered.append(DeliveredMessage(row.id, address, copy.folder, key))
    return delivered


async def finish_delivery(
    state: DeliveryState | Any,
    prepared: PreparedDelivery,
    delivered: list[DeliveredMessage],
) -> None:
    """After the commit: the events of the new copies."""
    bus: EventBus = state.bus
    summary = prepared.summary
    for item in delivered:
        if item.duplicate:
            continue
        try:
            await publish_mail_event(
                bus,
                item.address,
                "message.created",
                id=item.id,
                folder=item.folder,
                subject=summary.subject,
                **{"from": summary.from_addr},
            )
        except Exception:
            log.warning("could not publish message.created for %s", item.id, exc_info=True)


def message_values(
    prepared: PreparedDelivery,
    *,
    mailbox_id: int,
    copy: sieve.Copy,
    message_id_header: str | None,
    thread_id: str | None,
) -> dict[str, Any]:
    """The `messages` row of one stored copy (both filing paths build it here)."""
    summary = prepared.summary
    return {
        "mailbox_id": mailbox_id,
        "folder": copy.folder,
        # Only the first copy carries the Message-ID (the duplicate guard), as an API copy does.
        "message_id_header": message_id_header,
        "subject": summary.subject,
        "from_addr": summary.from_addr,
        "to_addrs": summary.to_addrs,
        "cc_addrs": summary.cc_addrs,
        "date": summary.date or prepared.now,
        "received_at": prepared.now,
        "snippet": summary.snippet,
        "body_text": summary.body_text,
        "size": len(prepared.stored),
        "seen": copy.seen,
        "flagged": copy.flagged,
        "answered": copy.answered,
        "draft": copy.draft,
        "spam_score": prepared.spam_score,
        "labels": list(copy.labels),
        "blob_key": prepared.key,
        "in_reply_to": summary.in_reply_to,
        "references_header": summary.references_header,
        "thread_id": thread_id,
        "has_attachments": summary.has_attachments,
        "envelope_from": clean_text(_normalise(prepared.envelope_from), 320),
        "auth_results": _auth_results(prepared.prepend_headers),
    }


def _auth_results(headers: Sequence[tuple[str, str]]) -> str:
    values = [value for name, value in headers if name.lower() == "authentication-results"]
    return clean_text(" ".join(" ".join(value.split()) for value in values), 4 * MAX_HEADER_FIELD)
