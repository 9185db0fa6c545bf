"""One match's changes, inside the caller's transaction (flush only; the caller commits).

Every change goes through the rules (`Board` replays the stored moves) and the clock, and
every write is guarded by the match's version counter: a move racing another move, a
resignation or a flag fall either wins or gets `Conflict`, never a corrupted match.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Table, and_, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from VEZEPyCore.errors import BadRequest, Conflict
from VEZEPyGame.db.matches import Match, MatchMove
from VEZEPyGame.db.models import Player
from VEZEPyGame.services.bot import BOT_LEVELS
from VEZEPyGame.services.connect4 import Board, IllegalMove, IllegalMoveReason
from VEZEPyGame.services.matches.clock import (
    TimeControl,
    deadline,
    elapsed_ms,
    flag_fallen,
    remaining_ms,
    side_to_move,
    stored_ms,
)
from VEZEPyGame.services.matches.hooks import MatchHooks

MODES = ("ranked", "casual", "bot")
SIDES = ("first", "second")
#: Two minutes and two seconds a move, unless the app's sessions carry another (see
#: `TIME_CONTROL_INFO_KEY`).
DEFAULT_TIME_CONTROL = TimeControl(initial_ms=120_000, increment_ms=2_000)
#: The app puts its configured TimeControl in every session's `info` under this key, so
#: `create_match` honours GAME_CLOCK_* whoever calls it (the matchmaker, the bot lobby).
TIME_CONTROL_INFO_KEY = "veze_match_time_control"


@dataclass(frozen=True)
class MoveResult:
    match: Match
    board: Board
    #: The mover's flag had already fallen: the match ended by timeout, the move was not made.
    timed_out: bool = False


def utcnow() -> datetime:
    return datetime.now(UTC)


def seat_of(match: Match, player_id: int) -> int | None:
    """0 or 1 for the seat `player_id` holds in `match`; None for anyone else."""
    if match.first_player_id == player_id:
        return 0
    if match.second_player_id is not None and match.second_player_id == player_id:
        return 1
    return None


def player_of(match: Match, side: int) -> int | None:
    """The player in seat `side`; None for the bot's seat."""
    return match.first_player_id if side == 0 else match.second_player_id


def bot_to_move(match: Match) -> bool:
    """An active bot match waiting on the bot's move (the bot may hold either seat)."""
    return (
        match.status == "active"
        and match.mode == "bot"
        and player_of(match, side_to_move(match)) is None
    )


@dataclass(frozen=True, slots=True)
class NewMatch:
    """One match to create: its id is chosen by the caller (the matchmaker claims tickets for
    it before the row exists)."""

    id: str
    mode: str
    #: None when the bot plays first (bot matches only).
    first_player_id: int | None
    #: None when the bot plays second (bot matches only).
    second_player_id: int | None
    bot_level: int | None = None


def _check_seats(new: NewMatch) -> None:
    """Bot matches have one player (in either seat) and a `bot_level`; the others two
    distinct players."""
    if new.mode not in MODES:
        raise BadRequest(f"mode must be one of {', '.join(MODES)}")
    if new.mode == "bot":
        one_player = (new.first_player_id is None) != (new.second_player_id is None)
        if not one_player or new.bot_level not in BOT_LEVELS:
            raise BadRequest("a bot match has one player and a bot level of 1 to 3")
    elif (
        new.first_player_id is None
        or new.second_player_id is None
        or new.second_player_id == new.first_player_id
        or new.bot_level
    ):
        raise BadRequest(f"a {new.mode} match needs two different players and no bot")


def _row(new: NewMatch, control: TimeControl, now: datetime) -> dict[str, object]:
    return {
        "id": new.id,
        "mode": new.mode,
        "first_player_id": new.first_player_id,
        "second_player_id": new.second_player_id,
        "bot_level": new.bot_level,
        "status": "active",
        "move_count": 0,
        "clock_initial_ms": control.initial_ms,
        "clock_increment_ms": control.increment_ms,
        "first_clock_ms": control.initial_ms,
        "second_clock_ms": control.initial_ms,
        "turn_started_at": now,
        "deadline_at": deadline(now, control.initial_ms),
        "created_at": now,
    }


def _control(session: AsyncSession, time_control: TimeControl | None) -> TimeControl:
    control = time_control or session.info.get(TIME_CONTROL_INFO_KEY) or DEFAULT_TIME_CONTROL
    assert isinstance(control, TimeControl)
    return control


async def create_match(
    session: AsyncSession,
    *,
    mode: str,
    first_player_id: int | None,
    second_player_id: int | None,
    bot_level: int | None = None,
    time_control: TimeControl | None = None,
    now: datetime | None = None,
) -> Match:
    """A new active match; the first player moves first and their clock starts now."""
    new = NewMatch(uuid.uuid4().hex, mode, first_player_id, second_player_id, bot_level)
    _check_seats(new)
    match = Match(**_row(new, _control(session, time_control), now or utcnow()))
    session.add(match)
    await session.flush()
    return match


async def create_matches(
    session: AsyncSession,
    matches: Sequence[NewMatch],
    *,
    time_control: TimeControl | None = None,
    now: datetime | None = None,
) -> None:
    """Many new active matches in one set-based insert (the matchmaker's pass): no ORM
    objects, so thousands cost one statement, not thousands of flushes."""
    if not matches:
        return
    for new in matches:
        _check_seats(new)
    control, now = _control(session, time_control), now or utcnow()
    # Core, not ORM: the ORM's bulk path would still build state per row.
    table = Match.__table__
    assert isinstance(table, Table)
    await session.execute(insert(table), [_row(new, control, now) for new in matches])


async def get_match(session: AsyncSession, match_id: str) -> Match | None:
    if len(match_id) != 32 or not all(ch in "0123456789abcdef" for ch in match_id):
        return None
    return await session.get(Match, match_id)


async def get_matches(session: AsyncSession, match_ids: Sequence[str]) -> list[Match]:
    """These matches (unknown ids are left out), in one query."""
    if not match_ids:
        return []
    return list(await session.scalars(select(Match).where(Match.id.in_(list(match_ids)))))


async def list_moves(session: AsyncSession, match_id: str) -> list[MatchMove]:
    rows = await session.scalars(
        select(MatchMove).where(MatchMove.match_id == match_id).order_by(MatchMove.ply)
    )
    return list(rows)


async def board_of(session: AsyncSession, match: Match) -> Board:
    return Board.from_moves(move.column for move in await list_moves(session, match.id))


async def players_of(session: AsyncSession, matches: Sequence[Match]) -> dict[int, Player]:
    """The players seated in `matches`, by id (one query)."""
    ids = {m.first_player_id for m in matches} | {
        m.second_player_id for m in matches if m.second_player_id is not None
    }
    if not ids:
        return {}
    rows = await session.scalars(select(Player).where(Player.id.in_(ids)))
    return {player.id: player for player in rows}


async def play_move(
    session: AsyncSession,
    *,
    hooks: MatchHooks,
    match: Match,
    player_id: int | None,
    column: int,
    now: datetime | None = None,
) -> MoveResult:
    """Drop a stone for `player_id` (None: the bot) in `column`.

    Raises IllegalMove (rules), Conflict with code `not_your_turn`, or Conflict when the match
    changed meanwhile. A mover whose flag has fallen loses by timeout instead (`timed_out`).
    """
    now = now or utcnow()
    board = await board_of(session, match)
    if match.status != "active":
        raise IllegalMove(IllegalMoveReason.GAME_OVER, "the match is over")
    side = side_to_move(match)
    if player_of(match, side) != player_id or (player_id is None and match.mode != "bot"):
        raise Conflict("it is not your turn", code="not_your_turn")
    if flag_fallen(match, now):
        await finish(session, hooks, match, result=SIDES[1 - side], end_reason="timeout", now=now)
        return MoveResult(match, board, timed_out=True)
    board = board.play(column)  # IllegalMove with the reason
    left = remaining_ms(match, side, now) + match.clock_increment_ms
    if side == 0:
        match.first_clock_ms = left
    else:
        match.second_clock_ms = left
    session.add(
        MatchMove(
            match_id=match.id,
            ply=match.move_count,
            column=column,
            player_id=player_id,
            clock_ms=left,
            played_at=now,
        )
    )
    match.move_count += 1
    match.draw_offer_side = None  # a move answers a standing offer with "no"
    match.turn_started_at = now
    match.deadline_at = deadline(now, stored_ms(match, 1 - side))
    if board.winner is not None:
        await finish(
            session, hooks, match, result=SIDES[board.winner], end_reason="four_in_a_row", now=now
        )
    elif board.is_full:
        await finish(session, hooks, match, result="draw", end_reason="draw", now=now)
    else:
        await flush(session)
    return MoveResult(match, board)


async def resign(
    session: AsyncSession,
    *,
    hooks: MatchHooks,
    match: Match,
    player_id: int,
    now: datetime | None = None,
) -> Match:
    """`player_id` gives up: the other side wins (even out of turn)."""
    now = now or utcnow()
    side = seat_of(match, player_id)
    if side is None:
        raise Conflict("only the players can resign")
    if match.status != "active":
        raise IllegalMove(IllegalMoveReason.GAME_OVER, "the match is over")
    if flag_fallen(match, now):
        # Time had already decided it; resigning afterwards does not change the result.
        await finish(
            session,
            hooks,
            match,
            result=SIDES[1 - side_to_move(match)],
            end_reason="timeout",
            now=now,
        )
        return match
    await finish(session, hooks, match, result=SIDES[1 - side], end_reason="resign", now=now)
    return match


def clock_flag_fallen(match: Match, now: datetime | None = None) -> bool:
    """True when the side to move of an active match is out of time."""
    return flag_fallen(match, now or utcnow())


async def check_flag(
    session: AsyncSession, *, hooks: MatchHooks, match: Match, now: datetime | None = None
) -> bool:
    """Finish `match` by timeout if the side to move is out of time; True when it did."""
    now = now or utcnow()
    if not flag_fallen(match, now):
        return False
    loser = side_to_move(match)
    await finish(session, hooks, match, result=SIDES[1 - loser], end_reason="timeout", now=now)
    return True


async def overdue_match_ids(session: AsyncSession, *, now: datetime, limit: int = 100) -> list[str]:
    """Active matches whose side to move is out of time (the clock sweeper's work)."""
    rows = await session.scalars(
        select(Match.id)
        .where(Match.status == "active", Match.deadline_at <= now)
        .order_by(Match.deadline_at)
        .limit(limit)
    )
    return list(rows)


async def stalled_bot_match_ids(
    session: AsyncSession, *, before: datetime, limit: int = 100
) -> list[str]:
    """Bot matches waiting on the bot since before `before`: its reply was lost (a restart)."""
    bots_turn = or_(
        and_(Match.second_player_id.is_(None), Match.move_count % 2 == 1),
        and_(Match.first_player_id.is_(None), Match.move_count % 2 == 0),
    )
    rows = await session.scalars(
        select(Match.id)
        .where(
            Match.status == "active",
            Match.mode == "bot",
            bots_turn,
            Match.turn_started_at < before,
        )
        .limit(limit)
    )
    return list(rows)


async def count_running_bot_matches(session: AsyncSession, *, player_id: int) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Match)
        .where(
            or_(Match.first_player_id == player_id, Match.second_player_id == player_id),
            Match.mode == "bot",
            Match.status == "active",
        )
    )
    return int(count or 0)


async def list_player_matches(
    session: AsyncSession, *, player_id: int, status: str | None = None, limit: int = 50
) -> list[Match]:
    """`player_id`'s matches, newest first."""
    query = select(Match).where(
        or_(Match.first_player_id == player_id, Match.second_player_id == player_id)
    )
    if status is not None:
        query = query.where(Match.status == status)
    rows = await session.scalars(query.order_by(Match.created_at.desc()).limit(limit))
    return list(rows)


async def finish(
    session: AsyncSession,
    hooks: MatchHooks,
    match: Match,
    *,
    result: str,
    end_reason: str,
    now: datetime,
) -> None:
    """End `match` with `result` (inside the caller's transaction) and run the in-transaction
    hooks (ratings)."""
    if match.status == "active":
        # Freeze the running clock at what was left.
        side = side_to_move(match)
        left = max(0, stored_ms(match, side) - elapsed_ms(match.turn_started_at, now))
        if side == 0:
            match.first_clock_ms = left
        else:
            match.second_clock_ms = left
    match.status = "finished"
    match.result = result
    match.end_reason = end_reason
    match.winner_player_id = None if result == "draw" else player_of(match, SIDES.index(result))
    match.finished_at = now
    match.deadline_at = None
    match.draw_offer_side = None
    await flush(session)
    await hooks.run_on_finished(session, match)


async def flush(session: AsyncSession) -> None:
    """Flush a match change; a lost race on its version is `Conflict` `match_changed`."""
    try:
        await session.flush()
    except (StaleDataError, IntegrityError) as exc:
        raise Conflict("the match changed meanwhile; reload it", code="match_changed") from exc
