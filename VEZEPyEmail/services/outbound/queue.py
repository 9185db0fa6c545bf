"""The durable outbound queue: what the SMTP listeners and the send API add remote mail to.

`enqueue_outbound` commits before it returns: once the submission listener has said 250 the
message and one queue row per remote recipient survive a crash (RFC 5321 6.1: "the SMTP server
MUST NOT lose the message"). The worker (worker.py) is woken after the commit.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.db.models import OutboundMessage, OutboundTask


def recipient_domain(address: str) -> str:
    """The domain part of an address, lower-cased (IDNA-encoded names stay as given)."""
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"not a mail address: {address!r}")
    return domain.lower()


async def enqueue_outbound(
    state: Any, *, raw: bytes, envelope_from: str, recipients: list[str]
) -> None:
    """Queue `raw` for delivery to each of `recipients`; durable when this returns.

    `state` is the Email app's `app.state` (its sessionmaker and settings). `envelope_from` is
    the reverse-path, "" for the null sender of a bounce (RFC 5321 4.5.5). One row per
    recipient, so each recipient's retries and outcome are its own.
    """
    if not recipients:
        return
    sessionmaker: async_sessionmaker[AsyncSession] = state.sessionmaker
    async with sessionmaker.begin() as session:
        await add_outbound(
            session, state, raw=raw, envelope_from=envelope_from, recipients=recipients
        )
    wake_outbound(state)


async def add_outbound(
    session: AsyncSession, state: Any, *, raw: bytes, envelope_from: str, recipients: list[str]
) -> None:
    """`enqueue_outbound` inside the caller's transaction (it flushes; the caller commits and
    then calls `wake_outbound`), so a send can queue its remote copies atomically with the rest.
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
    )
    session.add(message)
    await session.flush()
    await session.execute(
        insert(OutboundTask),
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


def wake_outbound(state: Any) -> None:
    """Start this process's worker at once (after the commit that queued something)."""
    wakeup = getattr(getattr(state, "outbound_worker", None), "wakeup", None)
    if isinstance(wakeup, asyncio.Event):
        wakeup.set()
