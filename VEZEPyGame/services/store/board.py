"""Equipped cosmetics on the board page: CSS custom properties for board.css.

Each player's stones wear their own piece colour, so both see the same colours; the board
theme is the viewer's own (it is how *they* like to look at the game). Two colours too alike
to tell apart are never shown together: the opponent's stones then fall back to whichever
default colour stands out more against the viewer's.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyGame.db.store import EquippedCosmetic
from VEZEPyGame.services.store.catalogue import Catalogue

#: board.css's defaults, per side.
DEFAULT_FIRST = "#d64545"
DEFAULT_SECOND = "#f2c230"
#: Below this distance (Euclidean, in RGB) two stone colours count as alike.
MIN_DISTANCE = 120.0


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def distance(a: str, b: str) -> float:
    return float(sum((x - y) ** 2 for x, y in zip(_rgb(a), _rgb(b), strict=True)) ** 0.5)


def stone_colours(
    first: str | None, second: str | None, *, viewer_is_second: bool
) -> tuple[str, str]:
    """The colours of the first and second player's stones, told apart from the viewer's side."""
    first_colour, second_colour = first or DEFAULT_FIRST, second or DEFAULT_SECOND
    if distance(first_colour, second_colour) >= MIN_DISTANCE:
        return first_colour, second_colour
    mine = second_colour if viewer_is_second else first_colour
    contrast = max((DEFAULT_FIRST, DEFAULT_SECOND), key=lambda colour: distance(colour, mine))
    return (contrast, mine) if viewer_is_second else (mine, contrast)


async def board_style(
    sessionmaker: async_sessionmaker[AsyncSession],
    catalogue: Catalogue,
    *,
    viewer_id: int,
    first_player_id: int | None,
    second_player_id: int | None,
) -> str:
    """`--stone-first: ...; --stone-second: ...` (+ the viewer's `--board`/`--hole`)."""
    ids = {pid for pid in (viewer_id, first_player_id, second_player_id) if pid is not None}
    async with sessionmaker() as session:
        rows = await session.execute(
            select(
                EquippedCosmetic.player_id, EquippedCosmetic.slot, EquippedCosmetic.item_id
            ).where(EquippedCosmetic.player_id.in_(ids))
        )
        equipped = {(row.player_id, row.slot): row.item_id for row in rows}

    def style_of(player_id: int | None, slot: str, key: str) -> str | None:
        item = catalogue.get(equipped.get((player_id, slot), "")) if player_id else None
        return item.style.get(key) if item is not None and item.slot == slot else None

    first, second = stone_colours(
        style_of(first_player_id, "piece_colour", "piece"),
        style_of(second_player_id, "piece_colour", "piece"),
        viewer_is_second=viewer_id == second_player_id,
    )
    parts = [f"--stone-first: {first}", f"--stone-second: {second}"]
    board, hole = (
        style_of(viewer_id, "board_theme", "board"),
        style_of(viewer_id, "board_theme", "hole"),
    )
    if board and hole:
        parts += [f"--board: {board}", f"--hole: {hole}"]
    return "; ".join(parts)
