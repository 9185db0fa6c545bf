"""Turn a match row, its board and its players into the shapes the API and events send."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from VEZEPyGame.db.matches import Match, MatchMove
from VEZEPyGame.db.models import DEFAULT_AVATAR_COLOUR, Player
from VEZEPyGame.services.bot import BOT_LEVELS
from VEZEPyGame.services.connect4 import Board
from VEZEPyGame.services.matches.clock import remaining_ms, side_to_move
from VEZEPyGame.services.matches.draws import cooldown_moves
from VEZEPyGame.services.matches.schemas import (
    ClockRead,
    DrawCooldownRead,
    MatchRead,
    MatchSummaryRead,
    MoveRead,
    SeatRead,
    Side,
)

SIDE_NAMES: tuple[Side, Side] = ("first", "second")
#: The bot's stone colour on the board and its seat's swatch.
BOT_COLOUR = "#d9534f"


def bot_name(level: int | None) -> str:
    bot = BOT_LEVELS.get(level or 0)
    return f"Bot ({bot.name})" if bot else "Bot"


def seat(match: Match, side: int, players: Mapping[int, Player]) -> SeatRead:
    player_id = match.first_player_id if side == 0 else match.second_player_id
    player = players.get(player_id) if player_id is not None else None
    if player is None:
        return SeatRead(
            side=SIDE_NAMES[side],
            player_id=player_id,
            handle=None,
            display_name=bot_name(match.bot_level) if match.mode == "bot" else "Unknown",
            avatar_colour=BOT_COLOUR if match.mode == "bot" else DEFAULT_AVATAR_COLOUR,
            bot_level=match.bot_level if match.mode == "bot" else None,
        )
    return SeatRead(
        side=SIDE_NAMES[side],
        player_id=player.id,
        handle=player.handle,
        display_name=player.display_name or player.handle,
        avatar_colour=player.avatar_colour,
    )


def match_read(
    match: Match, board: Board, players: Mapping[int, Player], now: datetime
) -> MatchRead:
    active = match.status == "active"
    running = SIDE_NAMES[side_to_move(match)] if active else None
    return MatchRead(
        id=match.id,
        mode=match.mode,
        status=match.status,
        result=match.result,
        end_reason=match.end_reason,
        winner_player_id=match.winner_player_id,
        first=seat(match, 0, players),
        second=seat(match, 1, players),
        moves=list(board.moves),
        board=board.grid(),
        to_move=running,
        clock=ClockRead(
            first_ms=remaining_ms(match, 0, now),
            second_ms=remaining_ms(match, 1, now),
            running=running,
            initial_ms=match.clock_initial_ms,
            increment_ms=match.clock_increment_ms,
        ),
        winning_cells=sorted(board.winning_cells()),
        draw_offer=SIDE_NAMES[match.draw_offer_side] if match.draw_offer_side is not None else None,
        draw_cooldown=DrawCooldownRead(
            first=cooldown_moves(match, 0) if active else 0,
            second=cooldown_moves(match, 1) if active else 0,
        ),
        version=match.version,
        created_at=match.created_at,
        finished_at=match.finished_at,
    )


def move_reads(moves: Sequence[MatchMove]) -> list[MoveRead]:
    return [
        MoveRead(
            ply=move.ply,
            column=move.column,
            side=SIDE_NAMES[move.ply % 2],
            player_id=move.player_id,
            clock_ms=move.clock_ms,
            played_at=move.played_at,
        )
        for move in moves
    ]


def summary_read(match: Match, player_id: int, players: Mapping[int, Player]) -> MatchSummaryRead:
    side = 0 if match.first_player_id == player_id else 1
    other = seat(match, 1 - side, players)
    outcome = None
    if match.result == "draw":
        outcome = "draw"
    elif match.result is not None:
        outcome = "win" if match.result == SIDE_NAMES[side] else "loss"
    return MatchSummaryRead(
        id=match.id,
        mode=match.mode,
        status=match.status,
        result=match.result,
        end_reason=match.end_reason,
        your_side=SIDE_NAMES[side],
        outcome=outcome,
        opponent=other.handle or other.display_name,
        move_count=match.move_count,
        created_at=match.created_at,
        finished_at=match.finished_at,
    )
