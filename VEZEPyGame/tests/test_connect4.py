"""Connect Four rules: examples and Hypothesis properties against a naive grid model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from VEZEPyGame.services.connect4 import COLUMNS, ROWS, Board, IllegalMove, IllegalMoveReason


def naive_grid(moves: list[int]) -> list[list[int]]:
    """grid[row][column] with row 0 at the bottom; 1/2 for the first/second player."""
    grid = [[0] * COLUMNS for _ in range(ROWS)]
    for ply, column in enumerate(moves):
        row = next(row for row in range(ROWS) if grid[row][column] == 0)
        grid[row][column] = 1 + ply % 2
    return grid


def naive_winner(grid: list[list[int]]) -> int | None:
    """1 or 2 when that player has four in a row anywhere, by scanning every line."""
    for row in range(ROWS):
        for column in range(COLUMNS):
            who = grid[row][column]
            if not who:
                continue
            for d_row, d_column in ((0, 1), (1, 0), (1, 1), (1, -1)):
                cells = [(row + k * d_row, column + k * d_column) for k in range(4)]
                if all(0 <= r < ROWS and 0 <= c < COLUMNS and grid[r][c] == who for r, c in cells):
                    return who
    return None


@st.composite
def legal_games(draw: st.DrawFn) -> list[int]:
    """A random sequence of legal moves, stopping at a win, a full board, or earlier."""
    board = Board()
    length = draw(st.integers(min_value=0, max_value=COLUMNS * ROWS))
    while len(board.moves) < length and not board.is_over:
        board = board.play(draw(st.sampled_from(board.legal_columns())))
    return list(board.moves)


@settings(max_examples=300, deadline=None)
@given(legal_games())
def test_random_legal_games_never_corrupt_the_board(moves: list[int]) -> None:
    board = Board.from_moves(moves)
    grid = naive_grid(moves)
    assert board.grid() == list(reversed(grid))  # drawn top row first
    assert board.moves == tuple(moves)
    assert board.stones[0] & board.stones[1] == 0
    assert board.stones[0].bit_count() == (len(moves) + 1) // 2
    assert board.stones[1].bit_count() == len(moves) // 2
    for column in range(COLUMNS):
        # No stone floats: a column's stones are exactly its lowest `height` cells.
        assert board.heights[column] == moves.count(column)
        filled = [board.cell(column, row) != 0 for row in range(ROWS)]
        assert filled == [row < board.heights[column] for row in range(ROWS)]
    assert board.to_move == len(moves) % 2


@settings(max_examples=300, deadline=None)
@given(legal_games())
def test_a_win_is_reported_exactly_when_four_in_a_row_exist(moves: list[int]) -> None:
    board = Board.from_moves(moves)
    expected = naive_winner(naive_grid(moves))
    assert board.winner == (None if expected is None else expected - 1)
    assert board.is_over == (expected is not None or len(moves) == COLUMNS * ROWS)
    if expected is not None:
        # The game stopped at the winning move: the last mover is the winner.
        assert board.winner == (len(moves) - 1) % 2
        assert len(board.winning_cells()) >= 4
        assert all(board.cell(c, r) == expected for c, r in board.winning_cells())
    else:
        assert board.winning_cells() == frozenset()


@settings(max_examples=200, deadline=None)
@given(legal_games(), st.integers(min_value=-50, max_value=50))
def test_illegal_moves_are_refused_with_a_reason(moves: list[int], column: int) -> None:
    board = Board.from_moves(moves)
    if board.is_over:
        expected: IllegalMoveReason | None = IllegalMoveReason.GAME_OVER
    elif not 0 <= column < COLUMNS:
        expected = IllegalMoveReason.COLUMN_OUT_OF_RANGE
    elif board.heights[column] == ROWS:
        expected = IllegalMoveReason.COLUMN_FULL
    else:
        expected = None
    if expected is None:
        after = board.play(column)
        assert after.moves == (*board.moves, column)
        return
    with pytest.raises(IllegalMove) as refused:
        board.play(column)
    assert refused.value.reason is expected
    assert refused.value.message
    assert board.moves == tuple(moves)  # the refused move changed nothing


@pytest.mark.parametrize(
    ("moves", "winner"),
    [
        ([0, 1, 0, 1, 0, 1, 0], 0),  # vertical
        ([0, 0, 1, 1, 2, 2, 3], 0),  # horizontal
        ([0, 1, 1, 2, 2, 3, 2, 3, 3, 6, 3], 0),  # rising diagonal
        ([6, 5, 5, 4, 4, 3, 4, 3, 3, 0, 3], 0),  # falling diagonal
        ([6, 0, 6, 1, 6, 2, 5, 3], 1),  # the second player wins along the bottom
    ],
)
def test_four_in_a_row_in_every_direction(moves: list[int], winner: int) -> None:
    board = Board.from_moves(moves)
    assert board.winner == winner
    assert board.legal_columns() == []
    with pytest.raises(IllegalMove) as refused:
        board.play(3)
    assert refused.value.reason is IllegalMoveReason.GAME_OVER


def test_a_full_board_without_four_is_a_draw() -> None:
    moves = [3, 3, 1, 6, 5, 0, 1, 1, 4, 2, 6, 6, 1, 4, 1, 2, 3, 1, 4, 3, 4]
    moves += [4, 5, 2, 3, 6, 3, 0, 6, 4, 2, 6, 0, 5, 5, 5, 5, 2, 0, 2, 0, 0]
    board = Board.from_moves(moves)
    assert naive_winner(naive_grid(moves)) is None
    assert board.is_full and board.is_draw and board.is_over
    assert board.winner is None
    assert board.legal_columns() == []


def test_a_full_column_is_refused() -> None:
    board = Board.from_moves([3] * ROWS)
    with pytest.raises(IllegalMove) as refused:
        board.play(3)
    assert refused.value.reason is IllegalMoveReason.COLUMN_FULL
    assert 3 not in board.legal_columns()
