"""The matchmaker: a background loop making a pairing pass every second and on each new ticket.

Each pass reads the waiting tickets, pairs them with the pure `pair_tickets`, and starts the
pairs' matches in transactions of up to `BATCH` matches, each match in a savepoint that first
claims its tickets. Tickets that waited
past the bot wait get a bot opponent the same way. Several workers may run this loop against
one database: the claim is what decides, so a ticket never lands in two matches.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyCore.db.engine import begin_as_writer
from VEZEPyCore.events.bus import EventBus
from VEZEPyCore.queue.wakeup import WakeableLoop
from VEZEPyGame.services.matchmaking import tickets
from VEZEPyGame.services.matchmaking.config import CompetitionSettings
from VEZEPyGame.services.matchmaking.pairing import (
    WaitingTicket,
    due_for_bot,
    pair_tickets,
)
from VEZEPyGame.services.matchmaking.start import MatchRequest, StartMatch, bot_level_for

log = logging.getLogger(__name__)

MATCH_FOUND = "match.found"
#: Matches started per transaction (each in its own savepoint).
BATCH = 64


class _ClaimLost(Exception):
    """A ticket of the pair is no longer waiting: roll this match's savepoint back."""


def player_channel(player_id: int) -> str:
    """The bus channel of one player's live game events."""
    return f"game:player:{player_id}"


@dataclass(frozen=True, slots=True)
class StartedMatch:
    match_id: str
    tickets: tuple[WaitingTicket, ...]
    bot_level: int | None


class Matchmaker(WakeableLoop):
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        bus: EventBus,
        start_match: StartMatch,
        settings: CompetitionSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
        after_start: Callable[[str], Awaitable[None]] | None = None,
        observe_wait: Callable[[str, float], None] | None = None,
    ) -> None:
        super().__init__(
            poll_seconds=settings.matchmaker_poll_seconds,
            clock=clock,
            name="matchmaker",
            label="matchmaker",
        )
        self._sessionmaker = sessionmaker
        self._bus = bus
        self._start_match = start_match
        self._settings = settings
        self._rng = rng or random.Random()
        #: Called with each new match's id after its commit (the match service's own event).
        self._after_start = after_start
        #: Called with (mode, seconds waited) for every ticket that got a match (metrics).
        self._observe_wait = observe_wait
        #: Matches this worker started (for tests and debugging).
        self.started = 0

    async def next_due(self) -> datetime | None:
        return None  # windows widen continuously: a pass per poll interval

    async def process_due(self) -> int:
        started = await self.run_pass()
        return len(started)

    async def run_pass(self) -> list[StartedMatch]:
        """One pairing pass: pairs first, then bots for the tickets that waited long enough."""
        now = self._clock()
        async with self._sessionmaker() as session:
            waiting = await tickets.waiting_tickets(session, now=now)
        if not waiting:
            return []
        plans: list[tuple[tuple[WaitingTicket, ...], int | None]] = []
        paired: set[str] = set()
        for pair in pair_tickets(waiting, self._settings.window):
            seats = [pair.first, pair.second]
            self._rng.shuffle(seats)  # who moves first is a coin toss
            plans.append((tuple(seats), None))
            paired.update((pair.first.ticket_id, pair.second.ticket_id))
        for ticket in waiting:
            if ticket.ticket_id not in paired and due_for_bot(
                ticket, bot_after_seconds=self._settings.bot_after
            ):
                plans.append(((ticket,), bot_level_for(ticket.rating)))
        started: list[StartedMatch] = []
        for offset in range(0, len(plans), BATCH):
            batch = await self._start_batch(plans[offset : offset + BATCH], now=now)
            for match in batch:
                await self._announce(match)
            started.extend(batch)
        self.started += len(started)
        if self._observe_wait is not None:
            for match in started:
                for seat in match.tickets:
                    self._observe_wait(seat.mode, seat.waited_seconds)
        return started

    async def _start_batch(
        self, plans: list[tuple[tuple[WaitingTicket, ...], int | None]], *, now: datetime
    ) -> list[StartedMatch]:
        """Start these matches in one transaction, each in a savepoint of its own: a match
        whose claim or start fails is rolled back alone, the others commit together."""
        started: list[StartedMatch] = []
        async with self._sessionmaker() as session:
            await begin_as_writer(session)
            for seats, bot_level in plans:
                try:
                    async with session.begin_nested():
                        match = await self._start(session, seats, bot_level=bot_level, now=now)
                except _ClaimLost:
                    continue  # cancelled, or claimed by another worker meanwhile
                except Exception:
                    # The match service refused or failed: these tickets wait for the next pass.
                    log.exception("could not start a match for %s", [s.ticket_id for s in seats])
                    continue
                started.append(match)
            await session.commit()
        return started

    async def _start(
        self,
        session: AsyncSession,
        seats: tuple[WaitingTicket, ...],
        *,
        bot_level: int | None,
        now: datetime,
    ) -> StartedMatch:
        if not await tickets.claim(session, [seat.ticket_id for seat in seats], now=now):
            raise _ClaimLost
        request = MatchRequest(
            mode=seats[0].mode,
            first_player_id=seats[0].player_id,
            second_player_id=seats[1].player_id if len(seats) > 1 else None,
            bot_level=bot_level,
        )
        match_id = await self._start_match(session, request)
        for seat in seats:
            opponent = next((s.player_id for s in seats if s is not seat), None)
            await tickets.record_match(
                session,
                ticket_id=seat.ticket_id,
                match_id=match_id,
                opponent_id=opponent,
                bot_level=bot_level,
            )
        return StartedMatch(match_id, seats, bot_level)

    async def _announce(self, match: StartedMatch) -> None:
        for seat in match.tickets:
            opponent = next((s.player_id for s in match.tickets if s is not seat), None)
            event = {
                "type": MATCH_FOUND,
                "match_id": match.match_id,
                "ticket_id": seat.ticket_id,
                "mode": seat.mode,
                "opponent_id": opponent,
                "bot_level": match.bot_level,
            }
            try:
                await self._bus.publish(player_channel(seat.player_id), event)
            except Exception:  # the match stands; the queue page also polls its status
                log.warning("could not announce match %s", match.match_id, exc_info=True)
        if self._after_start is not None:
            try:
                await self._after_start(match.match_id)
            except Exception:
                log.warning("after-start of match %s failed", match.match_id, exc_info=True)
