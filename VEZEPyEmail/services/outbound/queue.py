"""The durable outbound queue: what the SMTP listeners and the send API add remote mail to.

`enqueue_outbound` commits before it returns: once the submission listener has said 250 the
message and one queue row per remote recipient survive a crash (RFC 5321 6.1: "the SMTP server
MUST NOT lose the message"). Once the transaction that queued rows commits, they are dispatched
to the workers (worker.py): the local one wakes up, or with Redis the row ids go on the
queue's stream.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyCore.queue import QueueDefinition, QueueTable, QueueWorker
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.db.models import OutboundMessage, OutboundTask

#: The outbound queue as a VEZEPyCore queue: `sending` while leased, `failed` the dead letters
#: (a DSN went to the sender; see worker.py).
OUTBOUND = QueueTable(
    name="email.outbound",
    model=OutboundTask,
    waiting="queued",
    running="sending",
    done="sent",
    dead="failed",
    max_error_length=1000,
)
QUEUE = QueueDefinition(table=OUTBOUND, settings=EmailSettings)


def recipient_domain(address: str) -> str:
    """The domain part of an address, lower-cased (IDNA-encoded names stay as given)."""
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"not a mail address: {address!r}")
    return domain.lower()


async def enqueue_outbound(
    state: Any,
    *,
    raw: bytes,
    envelope_from: str,
    recipients: list[str],
    origin: str | None = None,
) -> None:
    """Queue `raw` for delivery to each of `recipients`; durable when this returns.

    `state` is the Email app's `app.state` (its sessionmaker and settings). `envelope_from` is
    the reverse-path, "" for the null sender of a bounce (RFC 5321 4.5.5). One row per
    recipient, so each recipient's retries and outcome are its own. `origin`: see
    `add_outbound`.
    """
    if not recipients:
        return
    sessionmaker: async_sessionmaker[AsyncSession] = state.sessionmaker
    async with sessionmaker.begin() as session:
        await add_outbound(
            session,
            state,
            raw=raw,
            envelope_from=envelope_from,
            recipients=recipients,
            origin=origin,
        )
    wake_outbound(state)


async def add_outbound(
    session: AsyncSession,
    state: Any,
    *,
    raw: bytes,
    envelope_from: str,
    recipients: list[str],
    origin: str | None = None,
) -> None:
    """`enqueue_outbound` inside the caller's transaction (it flushes; the caller commits), so
    a send can queue its remote copies atomically with the rest. The rows are dispatched when
    that transaction commits (and forgotten if it rolls back).

    `origin` names the cause when the same cause may queue again (a delivery tried again, a
    DSN repeated after a crash): a message whose origin is already queued is not queued twice.
    """
    if not recipients:
        return
    settings: EmailSettings = state.settings
    now = datetime.now(UTC)
    expires_at = now + timedelta(seconds=settings.outbound_lifetime_seconds)
    domains = [recipient_domain(recipient) for recipient in recipients]
    # The blob store fsyncs the bytes before the row that names them commits; without one
    # (a bare state in a tool) the bytes go into the row itself.
    blobs = getattr(state, "blobs", None)
    blob_key: str | None = await blobs.put(raw) if blobs is not None else None
    message = OutboundMessage(
        blob_key=blob_key,
        raw=None if blob_key is not None else raw,
        envelope_from=envelope_from,
        created_at=now,
        origin=origin,
    )
    if origin is None:
        session.add(message)
        await session.flush()
    elif not await _first_of_its_origin(session, message):
        return  # queued before, by an earlier try of the same cause
    added = await session.scalars(
        insert(OutboundTask).returning(OutboundTask.id),
        [
            {
                "message_id": message.id,
                "envelope_from": envelope_from,
                "recipients": [recipient],
                "domain": domain,
                "status": "queued",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
                "expires_at": expires_at,
            }
            for recipient, domain in zip(recipients, domains, strict=True)
        ],
    )
    # A process without the worker (the SMTP-only process) leaves the rows to the workers'
    # sweep in the web processes.
    worker = getattr(state, "outbound_worker", None)
    if isinstance(worker, QueueWorker):
        worker.notify_after_commit(session, list(added))


async def _first_of_its_origin(session: AsyncSession, message: OutboundMessage) -> bool:
    """Insert `message`; False when its origin is taken (the unique index decides a race)."""
    try:
        async with session.begin_nested():
            session.add(message)
            await session.flush()
    except IntegrityError:
        return False
    return True


def wake_outbound(state: Any) -> None:
    """After the commit that queued something. Kept for callers: the commit itself dispatches
    the rows now (`add_outbound`), so this only pokes the local loop when there is no Redis."""
    worker = getattr(state, "outbound_worker", None)
    if isinstance(worker, QueueWorker) and worker.dispatch is None:
        worker.wakeup.set()
