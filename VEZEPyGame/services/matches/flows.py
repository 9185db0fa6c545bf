"""Multi-step match work: one transaction per step, then events, hooks and the bot's reply.

Each step commits before it publishes, so whoever reacts to an event (the other player's page,
the lobby) reads what the event announced. The bot answers in the request of the move it
answers (after that move is committed and published), and answers a draw offer in the offer's
request; a reply or an answer lost to a restart is made by the clock sweeper (`tasks.py`),
which also ends matches whose side to move ran out of time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyCore.db.engine import begin_as_writer
from VEZEPyCore.errors import AppError, Conflict, NotFound
from VEZEPyCore.events.bus import EventBus
from VEZEPyGame.db.matches import Match
from VEZEPyGame.services.bot import choose_move, judge_draw
from VEZEPyGame.services.connect4 import IllegalMove
from VEZEPyGame.services.matches import draws, events, service
from VEZEPyGame.services.matches.hooks import MatchHooks
from VEZEPyGame.services.matches.schemas import MatchRead
from VEZEPyGame.services.matches.views import match_read

log = logging.getLogger(__name__)
#: Bot matches one player may have running at once (each costs the server a search per move).
MAX_RUNNING_BOT_MATCHES = 3


@dataclass(frozen=True)
class MatchRuntime:
    """What match flows need from the app (`app.state.match_runtime`)."""

    sessionmaker: async_sessionmaker[AsyncSession]
    bus: EventBus
    hooks: MatchHooks
    bot_think_seconds: float
    bot_reply_delay_ms: int


class Announcement:
    """What a committed step tells the world: a state event, and whether the match ended."""

    def __init__(self, kind: str, state: MatchRead, match: Match) -> None:
        self.kind = kind
        self.state = state
        self.match = match


async def snapshot(session: AsyncSession, match: Match) -> MatchRead:
    board = await service.board_of(session, match)
    players = await service.players_of(session, [match])
    return match_read(match, board, players, service.utcnow())


async def announce(runtime: MatchRuntime, announcement: Announcement) -> None:
    """Publish a committed step; after a finish, tell the players and run the followers."""
    await events.publish_state(runtime.bus, announcement.kind, announcement.state)
    if announcement.kind == events.FINISHED:
        await events.publish_to_players(runtime.bus, events.FINISHED, announcement.match)
        await runtime.hooks.run_after_finished(announcement.match)


def visible_to(match: Match, player_id: int) -> bool:
    """Players see their own matches; everyone signed in may watch finished ones."""
    return match.status == "finished" or service.seat_of(match, player_id) is not None


async def _load(session: AsyncSession, match_id: str) -> Match:
    match = await service.get_match(session, match_id)
    if match is None:
        raise NotFound("no such match")
    return match


async def start_bot_match(
    runtime: MatchRuntime, *, player_id: int, level: int, side: str = "first"
) -> MatchRead:
    """A new bot match with the player in `side` ("first" moves first), unless the player
    already has MAX_RUNNING_BOT_MATCHES running. When the bot has the first move, it is made
    before this returns."""
    async with runtime.sessionmaker() as session:
        await begin_as_writer(session)  # the count and the insert in one write transaction
        running = await service.count_running_bot_matches(session, player_id=player_id)
        if running >= MAX_RUNNING_BOT_MATCHES:
            raise Conflict(
                "you have too many bot matches running: finish or resign one first",
                code="too_many_matches",
            )
        first, second = (player_id, None) if side == "first" else (None, player_id)
        match = await service.create_match(
            session, mode="bot", first_player_id=first, second_player_id=second, bot_level=level
        )
        state = await snapshot(session, match)
        await session.commit()
    await events.publish_state(runtime.bus, events.STARTED, state)
    await events.publish_match_started(runtime.bus, match)
    await runtime.hooks.run_after_started(match)
    if service.bot_to_move(match):
        reply = await bot_reply(runtime, match_id=match.id)
        if reply is not None:
            return reply
    return state


async def read_match(runtime: MatchRuntime, *, match_id: str, player_id: int) -> MatchRead:
    """The match as `player_id` may see it, ending it first if a flag has fallen (lazily)."""
    async with runtime.sessionmaker() as session:
        match = await _load(session, match_id)
        if not visible_to(match, player_id):
            raise NotFound("no such match")
        if service.clock_flag_fallen(match):
            announcement = await _finish_overdue(runtime, session, match)
            if announcement is not None:
                await announce(runtime, announcement)
                return announcement.state
        return await snapshot(session, match)


async def finish_if_overdue(runtime: MatchRuntime, match_id: str) -> bool:
    """End `match_id` by timeout if its side to move is out of time (the sweeper, streams)."""
    async with runtime.sessionmaker() as session:
        match = await service.get_match(session, match_id)
        if match is None or not service.clock_flag_fallen(match):
            return False
        announcement = await _finish_overdue(runtime, session, match)
    if announcement is None:
        return False
    await announce(runtime, announcement)
    return True


async def _finish_overdue(
    runtime: MatchRuntime, session: AsyncSession, match: Match
) -> Announcement | None:
    await begin_as_writer(session)
    try:
        if not await service.check_flag(session, hooks=runtime.hooks, match=match):
            return None
        state = await snapshot(session, match)
        await session.commit()
    except AppError:
        # Another worker (or a move) changed the match first; theirs is the result.
        await session.rollback()
        return None
    return Announcement(events.FINISHED, state, match)


async def play_move(
    runtime: MatchRuntime, *, match_id: str, player_id: int, column: int
) -> MatchRead:
    """The player's move, committed and published; then, in a bot match, the bot's reply."""
    started = time.monotonic()
    async with runtime.sessionmaker() as session:
        await begin_as_writer(session)
        match = await _load(session, match_id)
        if service.seat_of(match, player_id) is None:
            raise NotFound("no such match")
        result = await service.play_move(
            session, hooks=runtime.hooks, match=match, player_id=player_id, column=column
        )
        state = await snapshot(session, match)
        await session.commit()
    kind = events.FINISHED if match.status == "finished" else events.MOVED
    await announce(runtime, Announcement(kind, state, match))
    if result.timed_out:
        raise Conflict("your time ran out: the match is lost on time", code="timeout")
    if service.bot_to_move(match):
        await _bot_pause(runtime, started)
        reply = await bot_reply(runtime, match_id=match_id)
        if reply is not None:
            return reply
    return state


async def _bot_pause(runtime: MatchRuntime, started: float) -> None:
    """Wait out what is left of GAME_BOT_REPLY_DELAY_MS since the request `started`, so the
    person sees their own move (or offer) land before the bot answers it."""
    delay = runtime.bot_reply_delay_ms / 1000 - (time.monotonic() - started)
    if delay > 0:
        await asyncio.sleep(delay)


async def bot_reply(runtime: MatchRuntime, *, match_id: str) -> MatchRead | None:
    """The bot's move in `match_id` if it is the bot's turn; None when there is nothing to do."""
    async with runtime.sessionmaker() as session:
        match = await service.get_match(session, match_id)
        if match is None or not service.bot_to_move(match) or match.bot_level is None:
            return None
        moves = [move.column for move in await service.list_moves(session, match_id)]
        level = match.bot_level
    # The search is CPU work: a thread keeps the event loop answering other requests.
    column = await asyncio.to_thread(
        choose_move, moves, level, time_budget=runtime.bot_think_seconds
    )
    async with runtime.sessionmaker() as session:
        await begin_as_writer(session)
        match = await _load(session, match_id)
        try:
            await service.play_move(
                session, hooks=runtime.hooks, match=match, player_id=None, column=column
            )
        except (AppError, IllegalMove) as exc:
            # The player resigned, or the match changed, while the bot thought.
            log.info("bot move in %s dropped: %s", match_id, exc)
            return None
        state = await snapshot(session, match)
        await session.commit()
    kind = events.FINISHED if match.status == "finished" else events.MOVED
    await announce(runtime, Announcement(kind, state, match))
    return state


async def offer_draw(runtime: MatchRuntime, *, match_id: str, player_id: int) -> MatchRead:
    """Offer a draw; if the opponent's offer was standing, the match ends drawn. Against the
    bot, the bot's answer follows in this request (after the offer is published), so the
    state returned already holds it."""
    started = time.monotonic()
    async with runtime.sessionmaker() as session:
        await begin_as_writer(session)
        match = await _load(session, match_id)
        if service.seat_of(match, player_id) is None:
            raise NotFound("no such match")
        ended = await draws.offer_draw(
            session, hooks=runtime.hooks, match=match, player_id=player_id
        )
        state = await snapshot(session, match)
        await session.commit()
    kind = events.FINISHED if ended else events.DRAW
    await announce(runtime, Announcement(kind, state, match))
    if draws.offer_to_bot(match):
        await _bot_pause(runtime, started)
        answer = await bot_answer_draw(runtime, match_id=match_id)
        if answer is not None:
            return answer
    return state


async def answer_draw(
    runtime: MatchRuntime, *, match_id: str, player_id: int, accept: bool
) -> MatchRead:
    """Accept (the match ends drawn) or decline the opponent's standing draw offer."""
    async with runtime.sessionmaker() as session:
        await begin_as_writer(session)
        match = await _load(session, match_id)
        if service.seat_of(match, player_id) is None:
            raise NotFound("no such match")
        await draws.answer_draw(
            session, hooks=runtime.hooks, match=match, player_id=player_id, accept=accept
        )
        state = await snapshot(session, match)
        await session.commit()
    kind = events.FINISHED if accept else events.DRAW
    await announce(runtime, Announcement(kind, state, match))
    return state


async def bot_answer_draw(runtime: MatchRuntime, *, match_id: str) -> MatchRead | None:
    """The bot's answer to the draw offer standing in `match_id`, published like a person's;
    None when there is nothing to answer (any more)."""
    async with runtime.sessionmaker() as session:
        match = await service.get_match(session, match_id)
        if match is None or not draws.offer_to_bot(match) or match.bot_level is None:
            return None
        assert match.draw_offer_side is not None  # offer_to_bot says so
        moves = [move.column for move in await service.list_moves(session, match_id)]
        level, bot_side, judged_at = match.bot_level, 1 - match.draw_offer_side, match.move_count
    # The search is CPU work: a thread keeps the event loop answering other requests.
    verdict = await asyncio.to_thread(
        judge_draw, moves, level, bot_side=bot_side, time_budget=runtime.bot_think_seconds
    )
    async with runtime.sessionmaker() as session:
        await begin_as_writer(session)
        match = await _load(session, match_id)
        try:
            if match.move_count != judged_at:
                raise Conflict("a move was made while the bot thought", code="match_changed")
            await draws.answer_draw_as_bot(
                session, hooks=runtime.hooks, match=match, accept=verdict.accept
            )
        except (AppError, IllegalMove) as exc:
            # A move answered the offer, the player resigned, or another worker answered first.
            log.info("bot draw answer in %s dropped: %s", match_id, exc)
            return None
        state = await snapshot(session, match)
        await session.commit()
    log.info(
        "bot %s a draw in %s (score %d, depth %d%s)",
        "accepted" if verdict.accept else "declined",
        match_id,
        verdict.score,
        verdict.depth,
        ", proven" if verdict.proven else "",
    )
    kind = events.FINISHED if verdict.accept else events.DRAW
    await announce(runtime, Announcement(kind, state, match))
    return state


async def resign(runtime: MatchRuntime, *, match_id: str, player_id: int) -> MatchRead:
    async with runtime.sessionmaker() as session:
        await begin_as_writer(session)
        match = await _load(session, match_id)
        if service.seat_of(match, player_id) is None:
            raise NotFound("no such match")
        await service.resign(session, hooks=runtime.hooks, match=match, player_id=player_id)
        state = await snapshot(session, match)
        await session.commit()
    await announce(runtime, Announcement(events.FINISHED, state, match))
    return state
