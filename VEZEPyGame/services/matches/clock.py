"""The time control: a clock per side, Fischer increment, flag fall.

Only the side to move has a running clock. Its time left is the stored value minus the time
since its turn started; `deadline_at` (turn start + time left) is stored too, so a single
indexed query finds every match whose flag has fallen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from VEZEPyGame.db.matches import Match


@dataclass(frozen=True)
class TimeControl:
    initial_ms: int
    increment_ms: int


def elapsed_ms(since: datetime, now: datetime) -> int:
    return max(0, int((now - since).total_seconds() * 1000))


def side_to_move(match: Match) -> int:
    return match.move_count % 2


def stored_ms(match: Match, side: int) -> int:
    return match.first_clock_ms if side == 0 else match.second_clock_ms


def remaining_ms(match: Match, side: int, now: datetime) -> int:
    """Time left of `side` at `now` (never below 0); frozen once the match is finished."""
    left = stored_ms(match, side)
    if match.status == "active" and side == side_to_move(match):
        left -= elapsed_ms(match.turn_started_at, now)
    return max(0, left)


def flag_fallen(match: Match, now: datetime) -> bool:
    return match.status == "active" and remaining_ms(match, side_to_move(match), now) <= 0


def deadline(turn_started_at: datetime, left_ms: int) -> datetime:
    return turn_started_at + timedelta(milliseconds=left_ms)
