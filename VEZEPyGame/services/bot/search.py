"""Negamax with alpha-beta pruning on bitboards, iterative deepening and a transposition table.

A position is `(current, mask)`: the stones of the side to move and all stones, in the layout
of `VEZEPyGame.services.connect4.rules`. `current + mask` identifies a position uniquely, so it
is the transposition key. Moves are ordered by the previous iteration's best move, then by how
many threats (cells that would complete four) they create, then towards the centre; good
ordering is what lets plain Python reach depth 8-12 in a fraction of a second.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from VEZEPyGame.services.connect4.rules import BOARD_MASK, BOTTOM, COLUMNS, ROWS, STRIDE

#: A win scores WIN minus the number of stones on the board at that point: sooner is better.
WIN = 10_000
DECIDED = WIN - COLUMNS * ROWS - 2
#: Columns from the centre out: the better first guess.
CENTRE_ORDER = (3, 2, 4, 1, 5, 0, 6)
CENTRE = ((1 << ROWS) - 1) << (3 * STRIDE)
NEAR_CENTRE = (((1 << ROWS) - 1) << (2 * STRIDE)) | (((1 << ROWS) - 1) << (4 * STRIDE))
#: How often (in nodes) the clock is read.
CLOCK_EVERY = 512

EXACT, LOWER, UPPER = 0, 1, 2


def column_mask(column: int) -> int:
    return ((1 << ROWS) - 1) << (column * STRIDE)


COLUMN_MASKS = tuple(column_mask(column) for column in range(COLUMNS))


def threats(stones: int, mask: int) -> int:
    """Empty cells where `stones` would complete four in a row."""
    # Vertical: three stacked directly below.
    found = (stones << 1) & (stones << 2) & (stones << 3)
    for shift in (STRIDE, STRIDE - 1, STRIDE + 1):
        pair = (stones << shift) & (stones << (2 * shift))
        found |= pair & (stones << (3 * shift))
        found |= pair & (stones >> shift)
        pair = (stones >> shift) & (stones >> (2 * shift))
        found |= pair & (stones << shift)
        found |= pair & (stones >> (3 * shift))
    return found & (BOARD_MASK ^ mask)


def playable(mask: int) -> int:
    """The next free cell of every column that is not full."""
    return (mask + BOTTOM) & BOARD_MASK


def evaluate(current: int, mask: int) -> int:
    """A guess at a position the search does not see to the end, for the side to move.

    Open threats weigh most (each is a cell the other side must never let be filled from
    below); then stones in and next to the centre column, which take part in most lines.
    """
    other = current ^ mask
    mine = threats(current, mask).bit_count() - threats(other, mask).bit_count()
    centre = (current & CENTRE).bit_count() - (other & CENTRE).bit_count()
    near = (current & NEAR_CENTRE).bit_count() - (other & NEAR_CENTRE).bit_count()
    return 8 * mine + 3 * centre + near


class _OutOfTime(Exception):
    pass


@dataclass
class SearchResult:
    column: int
    score: int
    depth: int
    nodes: int


class Searcher:
    """One search: holds its transposition table, node count and deadline."""

    def __init__(self, *, deadline: float | None = None) -> None:
        self.deadline = deadline
        self.nodes = 0
        self.table: dict[int, tuple[int, int, int, int]] = {}

    def ordered(self, current: int, mask: int, moves: int, first: int | None) -> list[int]:
        """Move bits of `moves`, best guess first."""
        scored: list[tuple[int, int, int]] = []
        for rank, column in enumerate(CENTRE_ORDER):
            move = moves & COLUMN_MASKS[column]
            if not move:
                continue
            priority = threats(current | move, mask | move).bit_count()
            if column == first:
                priority += 1000
            scored.append((-priority, rank, move))
        scored.sort()
        return [move for _, _, move in scored]

    def negamax(self, current: int, mask: int, depth: int, alpha: int, beta: int) -> int:
        self.nodes += 1
        if (
            self.deadline is not None
            and self.nodes % CLOCK_EVERY == 0
            and time.monotonic() > self.deadline
        ):
            raise _OutOfTime
        stones = mask.bit_count()
        if stones == COLUMNS * ROWS:
            return 0
        possible = playable(mask)
        if possible & threats(current, mask):
            return WIN - stones - 1
        other = current ^ mask
        other_threats = threats(other, mask)
        forced = possible & other_threats
        if forced:
            if forced & (forced - 1):
                return -(WIN - stones - 2)  # two threats at once: one of them gets played
            possible = forced
        # Never fill the cell just below one of the opponent's threats.
        safe = possible & ~(other_threats >> 1)
        if not safe:
            return -(WIN - stones - 2)
        if depth <= 0:
            return evaluate(current, mask)

        key = current + mask
        entry = self.table.get(key)
        best_first: int | None = None
        if entry is not None:
            entry_depth, flag, value, best_first = entry
            if entry_depth >= depth:
                if flag == EXACT:
                    return value
                if flag == LOWER:
                    alpha = max(alpha, value)
                elif flag == UPPER:
                    beta = min(beta, value)
                if alpha >= beta:
                    return value

        original_alpha = alpha
        best = -WIN * 2
        best_column = -1
        for move in self.ordered(current, mask, safe, best_first):
            score = -self.negamax(other, mask | move, depth - 1, -beta, -alpha)
            if score > best:
                best = score
                best_column = (move.bit_length() - 1) // STRIDE
            alpha = max(alpha, score)
            if alpha >= beta:
                break
        flag = UPPER if best <= original_alpha else LOWER if best >= beta else EXACT
        self.table[key] = (depth, flag, best, best_column)
        return best

    def root(self, current: int, mask: int, depth: int, first: int | None) -> list[tuple[int, int]]:
        """(score, column) of every legal root move at `depth`, best first."""
        other = current ^ mask
        results: list[tuple[int, int]] = []
        alpha = -WIN * 2
        for move in self.ordered(current, mask, playable(mask), first):
            column = (move.bit_length() - 1) // STRIDE
            # A full window below the best so far would hide ties; alpha - 1 keeps them exact
            # enough to choose among equals.
            score = -self.negamax(other, mask | move, depth - 1, -WIN * 2, -(alpha - 1))
            results.append((score, column))
            alpha = max(alpha, score)
        results.sort(key=lambda item: -item[0])
        return results


def immediate_win(current: int, mask: int) -> int | None:
    cells = playable(mask) & threats(current, mask)
    if not cells:
        return None
    return (cells.bit_length() - 1) // STRIDE


def forced_block(current: int, mask: int) -> int | None:
    cells = playable(mask) & threats(current ^ mask, mask)
    if not cells:
        return None
    return (cells.bit_length() - 1) // STRIDE


def best_move(
    current: int,
    mask: int,
    *,
    max_depth: int,
    time_budget: float | None = None,
    rng: random.Random | None = None,
) -> SearchResult:
    """Search to `max_depth` plies (fewer when `time_budget` seconds run out first).

    Iterative deepening: each finished depth's best move is searched first at the next one,
    and when time runs out the last finished depth answers. Among equally scored moves one is
    picked at random (`rng`), so the bot does not play the same game every time.
    """
    if mask == BOARD_MASK:
        raise ValueError("the board is full")
    win = immediate_win(current, mask)
    if win is not None:
        return SearchResult(win, WIN, 1, 1)
    deadline = time.monotonic() + time_budget if time_budget is not None else None
    searcher = Searcher(deadline=deadline)
    remaining = COLUMNS * ROWS - mask.bit_count()
    best: list[tuple[int, int]] = []
    finished_depth = 0
    for depth in range(1, min(max_depth, remaining) + 1):
        try:
            results = searcher.root(current, mask, depth, best[0][1] if best else None)
        except _OutOfTime:
            break
        best, finished_depth = results, depth
        if abs(best[0][0]) >= DECIDED and best[0][0] > 0:
            break  # a forced win is proven: deeper search cannot find a better one
        if all(score <= -DECIDED for score, _ in best):
            break  # every move loses against best play; the longest defence is chosen
    if not best:
        # Not even depth 1 finished within the budget: fall back to the safe obvious move.
        block = forced_block(current, mask)
        column = block if block is not None else _first_legal(mask)
        return SearchResult(column, 0, 0, searcher.nodes)
    top = best[0][0]
    equals = [column for score, column in best if score == top]
    chooser = rng or random.Random()  # variety, not security
    return SearchResult(chooser.choice(equals), top, finished_depth, searcher.nodes)


def _first_legal(mask: int) -> int:
    moves = playable(mask)
    for column in CENTRE_ORDER:
        if moves & COLUMN_MASKS[column]:
            return column
    raise ValueError("the board is full")
