"""The bot's answer to a draw offer: the same search it moves with, read as a verdict.

The bot searches the position at its level (as deep or as long as it would for a move) and
takes its own side's view of the best line's score:

- When the search saw to the end (a forced win or loss, or every line played out to the last
  cell), the score is the game's true value: the bot accepts a draw exactly when it cannot
  win, so a lost or drawn position is agreed at once and a won one played out. A dead
  position (no line of four is left for either side, however the empty cells fill) is a
  draw whatever the depth, so even Easy sees that one.
- Otherwise the score is a heuristic guess, and the bot plays on unless it thinks it is
  behind by at least its level's `draw_contempt` (Easy 4: a centre stone or so; Medium 8:
  about a threat; Hard 16: about two). The stronger the bot, the more it expects to out-play a
  person from a level position, so the further behind it must be before it settles; and no
  level takes a draw from an even opening.

The easier levels see less (Easy two plies, Medium five), so they misjudge more, as they do
when they move. The verdict has no randomness: the same position at the same level gets the
same answer (the Hard level's depth depends on its time budget, so only nearly).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from VEZEPyGame.services.bot.levels import BOT_LEVELS
from VEZEPyGame.services.bot.search import DECIDED, best_move
from VEZEPyGame.services.connect4.rules import BOARD_MASK, COLUMNS, ROWS, Board, has_four


@dataclass(frozen=True)
class DrawVerdict:
    accept: bool
    #: The bot's view of the position: above 0 when it thinks it is ahead.
    score: int
    #: The search saw every line to the end: `score` is the game's value, not a guess.
    proven: bool
    #: Plies the search finished.
    depth: int


def judge_draw(
    moves: Sequence[int], level: int, *, bot_side: int, time_budget: float | None = None
) -> DrawVerdict:
    """Whether the bot in seat `bot_side` (0 first, 1 second) at `level` accepts a draw in the
    position after `moves`. `time_budget` overrides the Hard level's (seconds), as for moves.

    Raises ValueError for an unknown level or a finished game.
    """
    settings = BOT_LEVELS.get(level)
    if settings is None:
        raise ValueError(f"bot level must be one of {sorted(BOT_LEVELS)}, not {level}")
    board = Board.from_moves(moves)
    if board.is_over:
        raise ValueError("the game is over")
    if is_dead(board):
        return DrawVerdict(accept=True, score=0, proven=True, depth=0)
    budget = settings.time_budget
    if budget is not None and time_budget is not None:
        budget = time_budget
    result = best_move(
        board.stones[board.to_move], board.mask, max_depth=settings.max_depth, time_budget=budget
    )
    # The search scores for the side to move; the offer may come on either side's turn.
    score = result.score if board.to_move == bot_side else -result.score
    remaining = COLUMNS * ROWS - len(board.moves)
    proven = abs(score) >= DECIDED or result.depth >= remaining
    accept = score <= 0 if proven else score <= -settings.draw_contempt
    return DrawVerdict(accept=accept, score=score, proven=proven, depth=result.depth)


def is_dead(board: Board) -> bool:
    """No four in a row is possible any more, for either side: the game can only be drawn."""
    empty = BOARD_MASK ^ board.mask
    return not any(has_four(stones | empty) for stones in board.stones)
