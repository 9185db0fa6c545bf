"""Connect Four rules (7 columns x 6 rows): pure, immutable, no I/O.

The match service replays stored moves through `Board` to validate each new one; the bot
searches on the same bitboard layout.
"""

from VEZEPyGame.services.connect4.rules import (
    COLUMNS,
    CONNECT,
    ROWS,
    Board,
    IllegalMove,
    IllegalMoveReason,
)

__all__ = ["COLUMNS", "CONNECT", "ROWS", "Board", "IllegalMove", "IllegalMoveReason"]
