"""The rating chart's geometry, computed on the server; the template draws it as inline SVG.

Numbers only leave here (no markup), so the page's escaping covers everything it renders.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 640
HEIGHT = 220
PAD_LEFT = 48
PAD_RIGHT = 12
PAD_TOP = 12
PAD_BOTTOM = 28
TICKS = 5


@dataclass(frozen=True, slots=True)
class Tick:
    value: int
    y: float


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float
    rating: int
    game: int


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    plot_left: int
    plot_right: int
    plot_top: int
    plot_bottom: int
    points: list[Point]
    ticks: list[Tick]

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


def rating_chart(changes: Sequence[tuple[int, int]]) -> Chart | None:
    """The chart of ratings over games from (before, after) pairs, oldest first; None when
    there is nothing to draw."""
    if not changes:
        return None
    series = [changes[0][0], *(after for _before, after in changes)]
    low, high = min(series), max(series)
    step = _nice_step(max(high - low, 20) / (TICKS - 1))
    low = math.floor(low / step) * step
    high = max(math.ceil(high / step) * step, low + step)
    left, right = PAD_LEFT, WIDTH - PAD_RIGHT
    top, bottom = PAD_TOP, HEIGHT - PAD_BOTTOM

    def y_of(value: float) -> float:
        return bottom - (value - low) / (high - low) * (bottom - top)

    count = len(series)
    points = [
        Point(
            x=left + (index / (count - 1) if count > 1 else 0.5) * (right - left),
            y=y_of(value),
            rating=value,
            game=index,
        )
        for index, value in enumerate(series)
    ]
    ticks = [Tick(int(value), y_of(value)) for value in _range(low, high, step)]
    return Chart(WIDTH, HEIGHT, left, right, top, bottom, points, ticks)


def _nice_step(raw: float) -> int:
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * magnitude:
            return int(max(factor * magnitude, 1))
    return int(10 * magnitude)


def _range(low: float, high: float, step: int) -> list[float]:
    values = []
    value = low
    while value <= high + 1e-9:
        values.append(value)
        value += step
    return values
