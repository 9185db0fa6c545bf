"""Three difficulty levels over one search.

1 (easy) looks two plies ahead and plays a random move half of the time, though it always
takes a win in one; 2 (medium) looks five plies ahead; 3 (hard) deepens until its time budget
(default 0.4 s) is spent, which in plain Python reaches 8-12 plies mid-game and the end of the
game late in it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from VEZEPyGame.services.bot.search import best_move, immediate_win
from VEZEPyGame.services.connect4.rules import COLUMNS, ROWS, Board


@dataclass(frozen=True)
class BotLevel:
    level: int
    name: str
    max_depth: int
    #: Chance of a random legal move instead of the searched one.
    blunder_rate: float
    #: Seconds the search may take (None: until max_depth).
    time_budget: float | None
    #: How far behind (in `evaluate` points, 8 a threat) its search must put the bot before it
    #: accepts a draw its search has not seen to the end (see `bot.draws`).
    draw_contempt: int


BOT_LEVELS: dict[int, BotLevel] = {
    1: BotLevel(1, "Easy", max_depth=2, blunder_rate=0.5, time_budget=None, draw_contempt=4),
    2: BotLevel(2, "Medium", max_depth=5, blunder_rate=0.0, time_budget=None, draw_contempt=8),
    3: BotLevel(
        3, "Hard", max_depth=COLUMNS * ROWS, blunder_rate=0.0, time_budget=0.4, draw_contempt=16
    ),
}


def choose_move(
    moves: Sequence[int],
    level: int,
    *,
    rng: random.Random | None = None,
    time_budget: float | None = None,
) -> int:
    """The bot's column for the position after `moves`.

    `time_budget` overrides the hard level's budget (seconds); the easier levels are bounded
    by depth, not time. Raises ValueError for an unknown level or a finished game.
    """
    settings = BOT_LEVELS.get(level)
    if settings is None:
        raise ValueError(f"bot level must be one of {sorted(BOT_LEVELS)}, not {level}")
    board = Board.from_moves(moves)
    legal = board.legal_columns()
    if not legal:
        raise ValueError("the game is over")
    chooser = rng or random.Random()  # variety, not security
    current = board.stones[board.to_move]
    mask = board.mask
    win = immediate_win(current, mask)
    if win is not None:
        return win
    if settings.blunder_rate and chooser.random() < settings.blunder_rate:
        return chooser.choice(legal)
    budget = settings.time_budget
    if budget is not None and time_budget is not None:
        budget = time_budget
    return best_move(
        current, mask, max_depth=settings.max_depth, time_budget=budget, rng=chooser
    ).column
