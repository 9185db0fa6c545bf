"""The bot: it finds wins, blocks losses, and the hard level beats a random player."""

from __future__ import annotations

import random

import pytest

from VEZEPyGame.services.bot import BOT_LEVELS, choose_move
from VEZEPyGame.services.bot.search import best_move
from VEZEPyGame.services.connect4 import Board

#: The hard level's search with a tenth of its default budget, to keep the suite fast: if it
#: never loses at this strength, the full budget (which searches deeper) does not either.
FAST_HARD_BUDGET = 0.04


def play_game(bot_side: int, level: int, rng: random.Random) -> Board:
    board = Board()
    while not board.is_over:
        if board.to_move == bot_side:
            column = choose_move(board.moves, level, rng=rng, time_budget=FAST_HARD_BUDGET)
        else:
            column = rng.choice(board.legal_columns())
        board = board.play(column)
    return board


def test_the_hard_level_never_loses_to_a_random_player() -> None:
    rng = random.Random(20261127)
    results = [play_game(game % 2, 3, rng) for game in range(40)]
    for game, board in enumerate(results):
        assert board.winner == game % 2, f"game {game}: {list(board.moves)}"


@pytest.mark.parametrize("level", sorted(BOT_LEVELS))
@pytest.mark.parametrize(
    ("moves", "winning_column"),
    [
        ([3, 0, 3, 0, 3, 0], 3),  # vertical three: complete it
        ([0, 6, 1, 6, 2, 5], 3),  # three along the bottom
        ([1, 0, 2, 0, 3, 6], 4),  # the open end of a horizontal three (0 is taken)
        ([6, 5, 5, 4, 4, 3, 4, 3, 3, 0], 3),  # a falling diagonal waits on column 3
    ],
)
def test_every_level_finds_an_immediate_win(
    level: int, moves: list[int], winning_column: int
) -> None:
    # Seeds that would make the easy level blunder are tried too: a win in one is never missed.
    for seed in range(5):
        column = choose_move(moves, level, rng=random.Random(seed), time_budget=0.05)
        assert Board.from_moves(moves).play(column).winner == len(moves) % 2, (seed, column)
    assert winning_column in Board.from_moves(moves).legal_columns()


@pytest.mark.parametrize("level", [2, 3])
def test_medium_and_hard_block_a_win_in_one(level: int) -> None:
    moves = [4, 0, 6, 1, 6, 2]  # the second player's bottom row 0-2 waits on column 3
    column = choose_move(moves, level, rng=random.Random(1), time_budget=0.05)
    assert column == 3
    board = Board.from_moves([*moves, column])
    # Whatever the bot chose, the opponent has no win in one now.
    assert all(board.play(reply).winner is None for reply in board.legal_columns())


def test_the_hard_level_sees_a_forced_win_two_moves_ahead() -> None:
    # The first player has stones in columns 2 and 3 of the bottom row with 1 and 4 open:
    # playing 4 (or 1) makes two threats at once, which cannot both be blocked.
    moves = [2, 2, 3, 3]
    board = Board.from_moves(moves)
    result = best_move(board.stones[0], board.mask, max_depth=6, time_budget=None)
    assert result.column in (1, 4)
    assert result.score > 9000  # scored as a proven win


def test_the_hard_level_answers_within_its_budget() -> None:
    board = Board.from_moves([3, 3, 2])
    result = best_move(
        board.stones[board.to_move], board.mask, max_depth=42, time_budget=FAST_HARD_BUDGET
    )
    assert result.depth >= 4  # iterative deepening got somewhere before the clock stopped it
    assert result.column in board.legal_columns()


def test_unknown_levels_and_finished_games_are_refused() -> None:
    with pytest.raises(ValueError, match="bot level"):
        choose_move([], 4)
    with pytest.raises(ValueError, match="over"):
        choose_move([0, 1, 0, 1, 0, 1, 0], 3)
