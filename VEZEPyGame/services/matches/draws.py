"""Draw offers: one standing offer at a time, a cooldown between a side's offers, the bot's
answers. Inside the caller's transaction, like `service`.

- Either player may offer a draw at any time, on either turn. The offer stands until the other
  side accepts it (the match ends drawn by agreement) or declines it, or until the next stone
  is dropped (a move answers "no"). Offering while the opponent's offer stands is agreeing.
- **Cooldown.** After an offer that did not end the match, the same side may not offer again
  until it has made `DRAW_OFFER_COOLDOWN_MOVES` more moves of its own (409 `draw_cooldown`;
  every state says how many each side still has to make, `draw_cooldown`). One rule covers
  every way to pester: offering again right after a decline, after an offer ignored by a
  move, or to the bot, each of whose answers costs a search. Counting the offerer's own moves,
  not seconds, ties it to the game rather than the clock, still lets a side offer several
  times in a game (it has at most 21 moves), and needs one number per side: the `move_count`
  of its last offer. The count runs from the offer, so a decline and an ignored offer cost
  the same.
- **The bot** answers an offer with its search's verdict (`bot.judge_draw`), as a person
  would: `flows` asks it in the offer's own request, and the sweeper answers offers a restart
  left standing (`unanswered_bot_offer_ids`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyCore.errors import Conflict
from VEZEPyGame.db.matches import Match
from VEZEPyGame.services.connect4 import IllegalMove, IllegalMoveReason
from VEZEPyGame.services.matches.hooks import MatchHooks
from VEZEPyGame.services.matches.service import finish, flush, player_of, seat_of, utcnow

#: Moves of its own a side must make after a draw offer before it may offer again.
DRAW_OFFER_COOLDOWN_MOVES = 3


def own_moves(side: int, plies: int) -> int:
    """Moves side `side` (0 first, 1 second) has made once `plies` stones are down."""
    return (plies + 1 - side) // 2


def _last_offer_ply(match: Match, side: int) -> int | None:
    return match.first_draw_offer_ply if side == 0 else match.second_draw_offer_ply


def cooldown_moves(match: Match, side: int) -> int:
    """Moves of its own `side` must still make before it may offer a draw (0: it may)."""
    offered_at = _last_offer_ply(match, side)
    if offered_at is None:
        return 0
    made = own_moves(side, match.move_count) - own_moves(side, offered_at)
    return max(0, DRAW_OFFER_COOLDOWN_MOVES - made)


def offer_to_bot(match: Match) -> bool:
    """An active bot match where the person's offer waits on the bot's answer."""
    return (
        match.status == "active"
        and match.mode == "bot"
        and match.draw_offer_side is not None
        and player_of(match, 1 - match.draw_offer_side) is None
    )


async def offer_draw(
    session: AsyncSession,
    *,
    hooks: MatchHooks,
    match: Match,
    player_id: int,
    now: datetime | None = None,
) -> bool:
    """`player_id` offers a draw; True when it ended the match (the other side had offered
    first, so this is an agreement). Refused with `draw_offered` while the caller's own offer
    stands and `draw_cooldown` during the cooldown."""
    now = now or utcnow()
    side = _playing_side(match, player_id)
    if match.draw_offer_side == 1 - side:
        await finish(session, hooks, match, result="draw", end_reason="agreement", now=now)
        return True
    if match.draw_offer_side == side:
        raise Conflict("your draw offer is already on the table", code="draw_offered")
    wait = cooldown_moves(match, side)
    if wait:
        raise Conflict(
            f"you offered a draw recently: make {wait} more move{'s' if wait > 1 else ''} "
            "before you offer another",
            code="draw_cooldown",
        )
    match.draw_offer_side = side
    if side == 0:
        match.first_draw_offer_ply = match.move_count
    else:
        match.second_draw_offer_ply = match.move_count
    await flush(session)
    return False


async def answer_draw(
    session: AsyncSession,
    *,
    hooks: MatchHooks,
    match: Match,
    player_id: int,
    accept: bool,
    now: datetime | None = None,
) -> None:
    """The other side accepts (a draw by agreement) or declines a standing draw offer."""
    await _answer(session, hooks, match, _playing_side(match, player_id), accept, now)


async def answer_draw_as_bot(
    session: AsyncSession,
    *,
    hooks: MatchHooks,
    match: Match,
    accept: bool,
    now: datetime | None = None,
) -> None:
    """The bot's answer to the person's standing offer (`no_draw_offer` if none stands)."""
    if match.status != "active":
        raise IllegalMove(IllegalMoveReason.GAME_OVER, "the match is over")
    if not offer_to_bot(match):
        raise Conflict("there is no draw offer for the bot", code="no_draw_offer")
    assert match.draw_offer_side is not None  # offer_to_bot says so
    await _answer(session, hooks, match, 1 - match.draw_offer_side, accept, now)


async def _answer(
    session: AsyncSession,
    hooks: MatchHooks,
    match: Match,
    side: int,
    accept: bool,
    now: datetime | None,
) -> None:
    if match.draw_offer_side != 1 - side:
        raise Conflict("there is no draw offer from your opponent", code="no_draw_offer")
    if accept:
        await finish(
            session, hooks, match, result="draw", end_reason="agreement", now=now or utcnow()
        )
        return
    match.draw_offer_side = None
    await flush(session)


def _playing_side(match: Match, player_id: int) -> int:
    side = seat_of(match, player_id)
    if side is None:
        raise Conflict("only the players can do that")
    if match.status != "active":
        raise IllegalMove(IllegalMoveReason.GAME_OVER, "the match is over")
    return side


async def unanswered_bot_offer_ids(
    session: AsyncSession, *, before: datetime, limit: int = 100
) -> list[str]:
    """Bot matches whose person's draw offer still waits on the bot although the turn began
    before `before`: the answer was lost (a restart). The turn's start is the bound because an
    offer is not timed; an answer racing the request's own loses on the version guard."""
    rows = await session.scalars(
        select(Match.id)
        .where(
            Match.status == "active",
            Match.mode == "bot",
            Match.draw_offer_side.is_not(None),
            Match.turn_started_at < before,
        )
        .limit(limit)
    )
    return list(rows)
