"""Statements on `smtp_intake` (models.IntakeMessage): record, claim, release, count."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyEmail.db.models import IntakeMessage


@dataclass(frozen=True)
class AcceptedMessage:
    """What the MX listener took responsibility for: the bytes, the envelope, the trace."""

    raw: bytes
    envelope_from: str
    recipients: Sequence[str]
    peer_ip: str
    helo: str
    received: str
    #: When the listener took it: the message's arrival time in the mailbox (received_at).
    accepted_at: datetime


@dataclass(frozen=True)
class ClaimedMessage(AcceptedMessage):
    id: int
    attempts: int


async def record(session: AsyncSession, messages: Sequence[AcceptedMessage]) -> None:
    """Insert the rows of `messages` in the caller's transaction (the caller commits)."""
    await session.execute(
        insert(IntakeMessage),
        [
            {
                "raw": message.raw,
                "envelope_from": message.envelope_from,
                "recipients": list(message.recipients),
                "peer_ip": message.peer_ip,
                "helo": message.helo,
                "received": message.received,
                "accepted_at": message.accepted_at,
                "leased_until": None,
                "attempts": 0,
            }
            for message in messages
        ],
    )


async def claim(
    session: AsyncSession, *, limit: int, lease_seconds: float, max_attempts: int
) -> list[ClaimedMessage]:
    """Lease up to `limit` deliverable rows, oldest first, in the caller's transaction.

    A row is deliverable when nobody holds its lease (never claimed, or the lease ran out:
    its deliverer died or stalled) and it has not used up its attempts.
    """
    now = datetime.now(UTC)
    free = (
        select(IntakeMessage.id)
        .where(
            or_(IntakeMessage.leased_until.is_(None), IntakeMessage.leased_until < now),
            IntakeMessage.attempts < max_attempts,
        )
        .order_by(IntakeMessage.id)
        .limit(limit)
        # PostgreSQL: deliverers of other processes skip the rows this one is leasing.
        .with_for_update(skip_locked=True)
    )
    statement = (
        update(IntakeMessage)
        .where(IntakeMessage.id.in_(free.scalar_subquery()))
        .values(
            leased_until=now + timedelta(seconds=lease_seconds),
            attempts=IntakeMessage.attempts + 1,
        )
        .returning(
            IntakeMessage.id,
            IntakeMessage.raw,
            IntakeMessage.envelope_from,
            IntakeMessage.recipients,
            IntakeMessage.peer_ip,
            IntakeMessage.helo,
            IntakeMessage.received,
            IntakeMessage.accepted_at,
            IntakeMessage.attempts,
        )
    )
    rows = (await session.execute(statement)).all()
    claimed = [
        ClaimedMessage(
            id=row.id,
            raw=bytes(row.raw),
            envelope_from=row.envelope_from,
            recipients=list(row.recipients),
            peer_ip=row.peer_ip,
            helo=row.helo,
            received=row.received,
            accepted_at=row.accepted_at,
            attempts=row.attempts,
        )
        for row in rows
    ]
    claimed.sort(key=lambda message: message.id)
    return claimed


async def finish(session: AsyncSession, ids: Sequence[int]) -> set[int]:
    """Delete the rows of delivered messages; returns the ids that were still there.

    Called in the transaction that files them, so a message is filed exactly when its row
    goes: an id missing here was delivered by another deliverer, and must not be filed again.
    """
    if not ids:
        return set()
    statement = delete(IntakeMessage).where(IntakeMessage.id.in_(ids)).returning(IntakeMessage.id)
    return set((await session.scalars(statement)).all())


async def release(session: AsyncSession, ids: Sequence[int]) -> None:
    """Give leases back undelivered (a deliverer stopping), so another takes them at once."""
    if ids:
        await session.execute(
            update(IntakeMessage)
            .where(IntakeMessage.id.in_(ids))
            .values(leased_until=None, attempts=IntakeMessage.attempts - 1)
        )


@dataclass(frozen=True)
class Backlog:
    waiting: int
    #: Rows that used up their attempts: kept, logged, and left to the operator (runbook).
    stuck: int
    oldest_accepted_at: datetime | None


async def backlog(session: AsyncSession, *, max_attempts: int) -> Backlog:
    """Messages waiting for delivery, those that gave up, and when the oldest waiting one
    was accepted."""
    stuck = IntakeMessage.attempts >= max_attempts
    waiting, stuck_count, oldest = (
        await session.execute(
            select(
                func.count(IntakeMessage.id).filter(~stuck),
                func.count(IntakeMessage.id).filter(stuck),
                func.min(IntakeMessage.accepted_at).filter(~stuck),
            )
        )
    ).one()
    return Backlog(int(waiting), int(stuck_count), oldest)
