"""The board and its rules.

Stones are kept as two bitboards, one per side. Column `c` owns bits `c*7 .. c*7+5` (row 0 is
the bottom) and bit `c*7+6` stays empty as a sentinel, so a shift by 1 (vertical), 7
(horizontal), 6 or 8 (the diagonals) never wraps from one column into the next. Four in a row
is then four shifted ANDs instead of a scan of the grid.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

COLUMNS = 7
ROWS = 6
CONNECT = 4
#: Bits per column: the rows plus the sentinel.
STRIDE = ROWS + 1
#: One bit at the bottom of every column: adding it to the mask of stones finds each column's
#: next free cell.
BOTTOM = sum(1 << (column * STRIDE) for column in range(COLUMNS))
BOARD_MASK = BOTTOM * ((1 << ROWS) - 1)
#: The four directions as bit shifts: vertical, horizontal, the two diagonals.
DIRECTIONS = (1, STRIDE, STRIDE - 1, STRIDE + 1)


class IllegalMoveReason(StrEnum):
    GAME_OVER = "game_over"
    COLUMN_OUT_OF_RANGE = "column_out_of_range"
    COLUMN_FULL = "column_full"


class IllegalMove(ValueError):
    """A move the rules refuse, with a machine-readable reason."""

    def __init__(self, reason: IllegalMoveReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def bit(column: int, row: int) -> int:
    return 1 << (column * STRIDE + row)


def has_four(stones: int) -> bool:
    for shift in DIRECTIONS:
        pairs = stones & (stones >> shift)
        if pairs & (pairs >> (2 * shift)):
            return True
    return False


def four_cells(stones: int) -> frozenset[tuple[int, int]]:
    """Every (column, row) that is part of a line of four or more of `stones`."""
    cells: set[tuple[int, int]] = set()
    for shift in DIRECTIONS:
        pairs = stones & (stones >> shift)
        starts = pairs & (pairs >> (2 * shift))
        for index in range(COLUMNS * STRIDE):
            if starts >> index & 1:
                for step in range(CONNECT):
                    position = index + step * shift
                    cells.add((position // STRIDE, position % STRIDE))
    return frozenset(cells)


@dataclass(frozen=True, slots=True)
class Board:
    """A position reached by `moves` (columns, first player first). Immutable."""

    #: Bitboards of the first and the second player's stones.
    stones: tuple[int, int] = (0, 0)
    #: Stones in each column.
    heights: tuple[int, ...] = (0,) * COLUMNS
    moves: tuple[int, ...] = ()
    #: 0 (first player) or 1 (second) once someone has four in a row; only the player who
    #: just moved can have made one, so it is decided in `play`.
    winner: int | None = None

    @classmethod
    def from_moves(cls, moves: Iterable[int]) -> Board:
        """Replay `moves` from the empty board; IllegalMove at the first illegal one."""
        board = cls()
        for column in moves:
            board = board.play(column)
        return board

    @property
    def to_move(self) -> int:
        """0 when the first player is to move, 1 for the second."""
        return len(self.moves) % 2

    @property
    def mask(self) -> int:
        return self.stones[0] | self.stones[1]

    @property
    def is_full(self) -> bool:
        return len(self.moves) == COLUMNS * ROWS

    @property
    def is_draw(self) -> bool:
        return self.is_full and self.winner is None

    @property
    def is_over(self) -> bool:
        return self.winner is not None or self.is_full

    def legal_columns(self) -> list[int]:
        if self.is_over:
            return []
        return [column for column in range(COLUMNS) if self.heights[column] < ROWS]

    def check(self, column: int) -> None:
        """Raise IllegalMove unless `column` may be played now."""
        if self.is_over:
            raise IllegalMove(IllegalMoveReason.GAME_OVER, "the game is over")
        if not 0 <= column < COLUMNS:
            raise IllegalMove(
                IllegalMoveReason.COLUMN_OUT_OF_RANGE,
                f"column must be 0 to {COLUMNS - 1}, not {column}",
            )
        if self.heights[column] >= ROWS:
            raise IllegalMove(IllegalMoveReason.COLUMN_FULL, f"column {column} is full")

    def play(self, column: int) -> Board:
        """The board after the side to move drops a stone in `column`."""
        self.check(column)
        side = self.to_move
        row = self.heights[column]
        mine = self.stones[side] | bit(column, row)
        stones = (mine, self.stones[1]) if side == 0 else (self.stones[0], mine)
        heights = (*self.heights[:column], row + 1, *self.heights[column + 1 :])
        return Board(
            stones=stones,
            heights=heights,
            moves=(*self.moves, column),
            winner=side if has_four(mine) else None,
        )

    def cell(self, column: int, row: int) -> int:
        """0 empty, 1 first player's stone, 2 second player's (row 0 is the bottom)."""
        probe = bit(column, row)
        if self.stones[0] & probe:
            return 1
        if self.stones[1] & probe:
            return 2
        return 0

    def grid(self) -> list[list[int]]:
        """Rows from the top down, each a list of COLUMNS cells (see `cell`): as drawn."""
        return [
            [self.cell(column, row) for column in range(COLUMNS)] for row in reversed(range(ROWS))
        ]

    def winning_cells(self) -> frozenset[tuple[int, int]]:
        """The (column, row) cells of the winner's line(s); empty without a winner."""
        if self.winner is None:
            return frozenset()
        return four_cells(self.stones[self.winner])
