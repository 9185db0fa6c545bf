"""Stone colours on the board: each side's own, never two that cannot be told apart."""

from __future__ import annotations

import pytest

from VEZEPyGame.services.store.board import (
    DEFAULT_FIRST,
    DEFAULT_SECOND,
    MIN_DISTANCE,
    distance,
    stone_colours,
)


def test_defaults_and_distinct_choices_are_kept() -> None:
    assert stone_colours(None, None, viewer_is_second=False) == (DEFAULT_FIRST, DEFAULT_SECOND)
    assert stone_colours("#129a5c", "#d4a20d", viewer_is_second=True) == ("#129a5c", "#d4a20d")


@pytest.mark.parametrize("viewer_is_second", [False, True])
def test_alike_colours_keep_the_viewers_and_change_the_opponents(viewer_is_second: bool) -> None:
    # Crimson against the red default: too close, whoever looks.
    first, second = ("#d64545", "#c0172f")
    shown = stone_colours(first, second, viewer_is_second=viewer_is_second)
    mine = second if viewer_is_second else first
    assert (shown[1] if viewer_is_second else shown[0]) == mine
    assert distance(*shown) >= MIN_DISTANCE
    assert set(shown) - {mine} <= {DEFAULT_FIRST, DEFAULT_SECOND}
