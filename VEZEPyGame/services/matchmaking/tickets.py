"""Queue tickets: join, cancel, read status; and claiming tickets for a match.

No double queueing is the database's rule (a unique index on waiting tickets per player).
Claims are conditional updates (`... WHERE status = 'waiting'`): of two workers claiming the
same ticket, or a worker and a cancel, exactly one changes the row; the other sees a row count
short and rolls back. That is what keeps a ticket out of two matches with several workers.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyCore.errors import Conflict, NotFound
from VEZEPyGame.db.competition import (
    TICKET_CANCELLED,
    TICKET_MATCHED,
    TICKET_WAITING,
    QueueTicket,
)
from VEZEPyGame.services.matches.service import list_player_matches
from VEZEPyGame.services.matchmaking.pairing import WaitingTicket
from VEZEPyGame.services.ratings.service import get_skill

QUEUE_MODES = ("ranked", "casual")


@dataclass(frozen=True, slots=True)
class QueueStatus:
    ticket: QueueTicket | None
    #: Tickets waiting in the same mode and region (the player's own included).
    waiting_in_pool: int


async def enqueue(
    session: AsyncSession, *, player_id: int, mode: str, region: str, now: datetime
) -> QueueTicket:
    """A new waiting ticket at the player's current rating (caller commits).

    Refused while the player waits already (the unique index decides) or still plays a match:
    a second match at the same time would leave one of them to time out.
    """
    if await list_player_matches(session, player_id=player_id, status="active", limit=1):
        raise Conflict("finish your running match before queueing again")
    skill = await get_skill(session, player_id=player_id, mode=mode)
    ticket = QueueTicket(
        id=uuid.uuid4().hex,
        player_id=player_id,
        mode=mode,
        region=region,
        rating=skill.mu,
        status=TICKET_WAITING,
        created_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(ticket)
            await session.flush()
    except IntegrityError:
        raise Conflict("already waiting in a queue; cancel that ticket first") from None
    return ticket


async def cancel(session: AsyncSession, *, player_id: int) -> str:
    """Cancel the player's waiting ticket; its id. 404 when nothing waits (caller commits)."""
    ticket_id = await session.scalar(
        update(QueueTicket)
        .where(QueueTicket.player_id == player_id, QueueTicket.status == TICKET_WAITING)
        .values(status=TICKET_CANCELLED)
        .returning(QueueTicket.id)
    )
    if ticket_id is None:
        raise NotFound("not waiting in a queue")
    return str(ticket_id)


async def queue_status(session: AsyncSession, *, player_id: int) -> QueueStatus:
    """The player's latest ticket (waiting, matched or cancelled) and the size of its pool."""
    ticket = await session.scalar(
        select(QueueTicket)
        .where(QueueTicket.player_id == player_id)
        .order_by(QueueTicket.created_at.desc(), QueueTicket.id)
        .limit(1)
    )
    waiting = 0
    if ticket is not None and ticket.status == TICKET_WAITING:
        waiting = int(
            await session.scalar(
                select(func.count())
                .select_from(QueueTicket)
                .where(
                    QueueTicket.status == TICKET_WAITING,
                    QueueTicket.mode == ticket.mode,
                    QueueTicket.region == ticket.region,
                )
            )
            or 0
        )
    return QueueStatus(ticket, waiting)


async def waiting_tickets(session: AsyncSession, *, now: datetime) -> list[WaitingTicket]:
    rows = await session.execute(
        select(
            QueueTicket.id,
            QueueTicket.player_id,
            QueueTicket.mode,
            QueueTicket.region,
            QueueTicket.rating,
            QueueTicket.created_at,
        ).where(QueueTicket.status == TICKET_WAITING)
    )
    tickets = []
    for ticket_id, player_id, mode, region, rating, created_at in rows:
        tickets.append(
            WaitingTicket(
                ticket_id=ticket_id,
                player_id=player_id,
                mode=mode,
                region=region,
                rating=rating,
                waited_seconds=(now - _aware(created_at)).total_seconds(),
            )
        )
    return tickets


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def claim(session: AsyncSession, ticket_ids: Sequence[str], *, now: datetime) -> bool:
    """Mark these tickets matched if every one is still waiting; False (claim nothing) if not.

    The caller rolls back on False, so a partial claim never commits.
    """
    result = await session.execute(
        update(QueueTicket)
        .where(QueueTicket.id.in_(list(ticket_ids)), QueueTicket.status == TICKET_WAITING)
        .values(status=TICKET_MATCHED, matched_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount) == len(ticket_ids)  # type: ignore[attr-defined]


async def record_match(
    session: AsyncSession,
    *,
    ticket_id: str,
    match_id: str,
    opponent_id: int | None,
    bot_level: int | None,
) -> None:
    await session.execute(
        update(QueueTicket)
        .where(QueueTicket.id == ticket_id)
        .values(match_id=match_id, opponent_id=opponent_id, bot_level=bot_level)
        .execution_options(synchronize_session=False)
    )


async def get_ticket(session: AsyncSession, *, ticket_id: str, player_id: int) -> QueueTicket:
    ticket = await session.get(QueueTicket, ticket_id)
    if ticket is None or ticket.player_id != player_id:
        raise NotFound("no such ticket")
    return ticket
