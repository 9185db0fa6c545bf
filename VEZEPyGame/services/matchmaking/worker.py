"""The matchmaker: a background loop making a pairing pass every second and on each new ticket.

A pass is set-based from end to end: one read of the waiting tickets (only the columns pairing
needs), the pure `pair_tickets`, then one transaction that claims every planned ticket in one
statement and creates every match whose tickets were all claimed in one insert. Tickets that
waited past the bot wait, and whose player agreed to a bot (`bot_fill`), get a bot opponent the
same way. Several workers may run this loop against one database: the claim is what decides,
so a ticket never lands in two matches. If the set-based start fails, the pass falls back to a
savepoint per match, so one bad match cannot hold the others back.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Awaitable, Callable, Sequence
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
from VEZEPyGame.services.matchmaking.start import MatchRequest, StartMatches, bot_level_for
from VEZEPyGame.services.matchmaking.tickets import Claim

log = logging.getLogger(__name__)

MATCH_FOUND = "match.found"
#: Random bytes in a match id (32 hex digits, the format of `uuid4().hex`).
ID_BYTES = 16


def player_channel(player_id: int) -> str:
    """The bus channel of one player's live game events."""
    return f"game:player:{player_id}"


@dataclass(frozen=True, slots=True)
class StartedMatch:
    match_id: str
    tickets: tuple[WaitingTicket, ...]
    bot_level: int | None

    def request(self) -> MatchRequest:
        seats = self.tickets
        return MatchRequest(
            match_id=self.match_id,
            mode=seats[0].mode,
            first_player_id=seats[0].player_id,
            second_player_id=seats[1].player_id if len(seats) > 1 else None,
            bot_level=self.bot_level,
        )

    def claims(self) -> list[Claim]:
        return [
            Claim(
                ticket_id=seat.ticket_id,
                match_id=self.match_id,
                opponent_id=next((s.player_id for s in self.tickets if s is not seat), None),
                bot_level=self.bot_level,
            )
            for seat in self.tickets
        ]


class Matchmaker(WakeableLoop):
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        bus: EventBus,
        start_matches: StartMatches,
        settings: CompetitionSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
        after_start: Callable[[Sequence[str]], Awaitable[None]] | None = None,
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
        self._start_matches = start_matches
        self._settings = settings
        self._rng = rng or random.Random()
        #: Called with the new matches' ids after their commit (the match service's own event).
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
        """One pass: read, pair, claim and start, commit; then announce."""
        now = self._clock()
        async with self._sessionmaker() as session:
            waiting = await tickets.waiting_tickets(session, now=now)
        if not waiting:
            return []
        started = await self.start_planned(self.plan(waiting), now=now)
        await self.announce(started)
        return started

    def plan(self, waiting: Sequence[WaitingTicket]) -> list[StartedMatch]:
        """The matches this pass would start: pairs first, then bots for the tickets that
        waited long enough and accept one. Match ids are chosen here."""
        pairs = pair_tickets(waiting, self._settings.window)
        bot_after = self._settings.bot_after
        lonely: list[WaitingTicket] = []
        if bot_after is not None:
            paired = {t.ticket_id for pair in pairs for t in pair}
            lonely = [
                t
                for t in waiting
                if t.ticket_id not in paired and due_for_bot(t, bot_after_seconds=bot_after)
            ]
        # One read of the OS's randomness for every id of the pass (uuid4 per match costs a
        # system call and an object each).
        ids = os.urandom(ID_BYTES * (len(pairs) + len(lonely))).hex()
        width, coin = 2 * ID_BYTES, self._rng.random
        plans = [
            # Who moves first is a coin toss.
            StartedMatch(
                ids[i * width : (i + 1) * width], pair if coin() < 0.5 else pair[::-1], None
            )
            for i, pair in enumerate(pairs)
        ]
        offset = len(plans)
        plans.extend(
            StartedMatch(
                ids[(offset + i) * width : (offset + i + 1) * width], (t,), bot_level_for(t.rating)
            )
            for i, t in enumerate(lonely)
        )
        return plans

    async def start_planned(
        self, plans: list[StartedMatch], *, now: datetime
    ) -> list[StartedMatch]:
        """Claim and start `plans` in one transaction; the matches that started."""
        if not plans:
            return []
        async with self._sessionmaker() as session:
            await begin_as_writer(session)
            claimed = await tickets.claim(
                session, [c for plan in plans for c in plan.claims()], now=now
            )
            ready: list[StartedMatch] = []
            orphans: list[str] = []  # claimed, but the other seat was lost
            for plan in plans:
                seats = [t.ticket_id for t in plan.tickets]
                if all(seat in claimed for seat in seats):
                    ready.append(plan)
                else:
                    orphans.extend(seat for seat in seats if seat in claimed)
            await tickets.release(session, orphans)
            try:
                async with session.begin_nested():
                    await self._start_matches(session, [p.request() for p in ready])
            except Exception:
                log.warning("set-based start failed; starting match by match", exc_info=True)
                ready = await self._start_one_by_one(session, ready)
            await session.commit()
        self.started += len(ready)
        if self._observe_wait is not None:
            for match in ready:
                for seat in match.tickets:
                    self._observe_wait(seat.mode, seat.waited_seconds)
        return ready

    async def _start_one_by_one(
        self, session: AsyncSession, plans: list[StartedMatch]
    ) -> list[StartedMatch]:
        """Each match in a savepoint of its own; a match that cannot start puts its tickets
        back to waiting (for the next pass) instead of failing the others."""
        started: list[StartedMatch] = []
        for plan in plans:
            try:
                async with session.begin_nested():
                    await self._start_matches(session, [plan.request()])
            except Exception:
                log.exception("could not start match for %s", [t.ticket_id for t in plan.tickets])
                await tickets.release(session, [t.ticket_id for t in plan.tickets])
                continue
            started.append(plan)
        return started

    async def announce(self, started: Sequence[StartedMatch]) -> None:
        """After the commit: `match.found` to every seated player, then the match service's
        own announcement. A failure is logged: the matches stand, and the queue page polls."""
        for match in started:
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
                except Exception:
                    log.warning("could not announce match %s", match.match_id, exc_info=True)
        if self._after_start is not None and started:
            try:
                await self._after_start([match.match_id for match in started])
            except Exception:
                log.warning("after-start of %d matches failed", len(started), exc_info=True)
