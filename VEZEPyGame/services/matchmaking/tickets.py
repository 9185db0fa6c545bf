"""Queue tickets: join, cancel, read status; and claiming tickets for a match.

No double queueing is the database's rule (a unique index on waiting tickets per player).
Claims are conditional updates (`... WHERE status = 'waiting'`): of two workers claiming the
same ticket, or a worker and a cancel, exactly one changes the row; the other sees a row count
short and rolls back. That is what keeps a ticket out of two matches with several workers.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Float, bindparam, cast, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyCore.db.types import UTCDateTime
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
    session: AsyncSession,
    *,
    player_id: int,
    mode: str,
    region: str,
    now: datetime,
    bot_fill: bool = False,
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
        bot_fill=bot_fill,
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


def _waited_seconds(dialect: str, now: datetime) -> ColumnElement[Any]:
    """Seconds each ticket has waited at `now`, computed by the database: converting ten
    thousand timestamps in Python costs more than the rest of the read."""
    if dialect == "postgresql":
        # EXTRACT gives numeric; pairing does float arithmetic.
        waited = func.extract(
            "epoch", bindparam("now", now, type_=UTCDateTime()) - QueueTicket.created_at
        )
        return cast(waited, Float)
    # SQLite keeps UTC timestamps as text; julianday() is in days (millisecond precision).
    return (
        func.julianday(bindparam("now", now, type_=UTCDateTime()))
        - func.julianday(QueueTicket.created_at)
    ) * 86400.0


async def waiting_tickets(session: AsyncSession, *, now: datetime) -> list[WaitingTicket]:
    """Every waiting ticket, with only what pairing needs, in one Core read (no ORM rows)."""
    connection = await session.connection()
    rows = await connection.execute(
        select(
            QueueTicket.id,
            QueueTicket.player_id,
            QueueTicket.mode,
            QueueTicket.region,
            QueueTicket.rating,
            _waited_seconds(connection.dialect.name, now),
            QueueTicket.bot_fill,
        ).where(QueueTicket.status == TICKET_WAITING)
    )
    return [WaitingTicket._make(row) for row in rows]


@dataclass(frozen=True, slots=True)
class Claim:
    """One ticket to claim for a match (its id chosen before the match row exists)."""

    ticket_id: str
    match_id: str
    opponent_id: int | None
    bot_level: int | None


# SQLite: the claims arrive as one JSON array parameter; UPDATE ... FROM and RETURNING make it
# one statement. The claims drive the loop, each ticket found by its primary key (`+status`
# keeps the planner off the status index: walking every waiting ticket per claim is quadratic).
# SQLite has one writer at a time, so no row locks are needed.
_CLAIM_SQLITE = text(
    """
    WITH v AS MATERIALIZED (
        SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS match_id,
               json_extract(value, '$[2]') AS opponent_id, json_extract(value, '$[3]') AS bot_level
          FROM json_each(:claims)
    )
    UPDATE queue_tickets
       SET status = 'matched', matched_at = :now, match_id = v.match_id,
           opponent_id = v.opponent_id, bot_level = v.bot_level
      FROM v
     WHERE queue_tickets.id = v.id AND +queue_tickets.status = 'waiting'
    RETURNING queue_tickets.id
    """
).bindparams(bindparam("now", type_=UTCDateTime()))

# PostgreSQL: arrays unnested into rows. The still-waiting tickets are locked first in id
# order with SKIP LOCKED: two workers claiming overlapping sets never wait on (or deadlock
# with) each other; a ticket another worker is claiming is simply not claimed here.
_CLAIM_POSTGRES = text(
    """
    WITH v AS (
        SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:match_ids AS text[]),
                             CAST(:opponents AS integer[]), CAST(:bots AS integer[]))
            AS v(id, match_id, opponent_id, bot_level)
    ), locked AS (
        SELECT t.id FROM queue_tickets AS t JOIN v ON v.id = t.id
         WHERE t.status = 'waiting' ORDER BY t.id FOR UPDATE OF t SKIP LOCKED
    )
    UPDATE queue_tickets AS t
       SET status = 'matched', matched_at = :now, match_id = v.match_id,
           opponent_id = v.opponent_id, bot_level = v.bot_level
      FROM v
     WHERE t.id = v.id AND t.id IN (SELECT id FROM locked)
    RETURNING t.id
    """
).bindparams(bindparam("now", type_=UTCDateTime()))


async def claim(session: AsyncSession, claims: Sequence[Claim], *, now: datetime) -> set[str]:
    """Mark these tickets matched (recording match, opponent and bot level) where they are
    still waiting, in one statement; the ids of the tickets claimed.

    A ticket cancelled or claimed elsewhere meanwhile is left out; the caller releases the
    other half of such a pair (`release`) before it commits.
    """
    if not claims:
        return set()
    if (await session.connection()).dialect.name == "postgresql":
        rows = await session.execute(
            _CLAIM_POSTGRES,
            {
                "ids": [c.ticket_id for c in claims],
                "match_ids": [c.match_id for c in claims],
                "opponents": [c.opponent_id for c in claims],
                "bots": [c.bot_level for c in claims],
                "now": now,
            },
        )
    else:
        document = json.dumps(
            [[c.ticket_id, c.match_id, c.opponent_id, c.bot_level] for c in claims],
            separators=(",", ":"),
        )
        rows = await session.execute(_CLAIM_SQLITE, {"claims": document, "now": now})
    return {row[0] for row in rows}


async def release(session: AsyncSession, ticket_ids: Sequence[str]) -> None:
    """Put tickets this transaction claimed back to waiting (their partner was lost)."""
    if ticket_ids:
        await session.execute(
            update(QueueTicket)
            .where(QueueTicket.id.in_(list(ticket_ids)), QueueTicket.status == TICKET_MATCHED)
            .values(
                status=TICKET_WAITING,
                matched_at=None,
                match_id=None,
                opponent_id=None,
                bot_level=None,
            )
            .execution_options(synchronize_session=False)
        )


async def get_ticket(session: AsyncSession, *, ticket_id: str, player_id: int) -> QueueTicket:
    ticket = await session.get(QueueTicket, ticket_id)
    if ticket is None or ticket.player_id != player_id:
        raise NotFound("no such ticket")
    return ticket
