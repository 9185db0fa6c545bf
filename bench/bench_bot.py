"""How long the bot thinks and how strong it is, per level, in plain Python.

Plays each level against a random player and the hard level against the medium one, and prints
win rates and the thinking time per move (median, p95, max). Run against the current tree:

    .venv/bin/python bench/bench_bot.py --games 20
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from VEZEPyGame.services.bot import BOT_LEVELS, choose_move  # noqa: E402
from VEZEPyGame.services.connect4 import Board  # noqa: E402

Player = int | None  # a bot level, or None for the random player


def play(first: Player, second: Player, rng: random.Random, times: dict[int, list[float]]) -> int:
    """1 when the first player wins, -1 when the second does, 0 for a draw."""
    board = Board()
    while not board.is_over:
        player = first if board.to_move == 0 else second
        if player is None:
            column = rng.choice(board.legal_columns())
        else:
            started = time.perf_counter()
            column = choose_move(board.moves, player, rng=rng)
            times.setdefault(player, []).append(time.perf_counter() - started)
        board = board.play(column)
    if board.winner is None:
        return 0
    return 1 if board.winner == 0 else -1


def match_up(
    a: Player, b: Player, games: int, rng: random.Random, times: dict[int, list[float]]
) -> tuple[int, int, int]:
    wins = draws = losses = 0
    for game in range(games):
        outcome = play(a, b, rng, times) if game % 2 == 0 else -play(b, a, rng, times)
        wins += outcome == 1
        draws += outcome == 0
        losses += outcome == -1
    return wins, draws, losses


def name(player: Player) -> str:
    return "random" if player is None else f"{BOT_LEVELS[player].name.lower()} bot"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    times: dict[int, list[float]] = {}
    pairings: list[tuple[Player, Player]] = [(1, None), (2, None), (3, None), (2, 1), (3, 2)]
    for a, b in pairings:
        wins, draws, losses = match_up(a, b, args.games, rng, times)
        print(f"{name(a):>10} vs {name(b):<10} won {wins:3d}  drew {draws:3d}  lost {losses:3d}")
    print()
    for level, samples in sorted(times.items()):
        samples.sort()
        p95 = samples[int(0.95 * (len(samples) - 1))]
        median = statistics.median(samples)
        print(
            f"{name(level):>10}: {len(samples):5d} moves, median {median:.3f} s,"
            f" p95 {p95:.3f} s, max {samples[-1]:.3f} s"
        )


if __name__ == "__main__":
    main()
