"""What a match summary says: result, opponent, rating change (when rated), replay link.

Composed once, when the match ends, from the database as it is then; the outbox keeps the
text, so a retry days later still says what happened, not what the ratings say now.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection

from VEZEPyGame.db.models import Player

#: The rating shown to people is the rounded mean (VEZEPyGame/services/ratings/model.py).
RATING_HISTORY_TABLE = "rating_history"
END_REASONS = {
    "four_in_a_row": "four in a row",
    "resign": "resignation",
    "timeout": "time",
    "draw": "a full board",
}


class FinishedMatch(Protocol):
    """The fields of a finished `matches` row the summary reads."""

    @property
    def id(self) -> str: ...
    @property
    def mode(self) -> str: ...
    @property
    def first_player_id(self) -> int: ...
    @property
    def second_player_id(self) -> int | None: ...
    @property
    def bot_level(self) -> int | None: ...
    @property
    def winner_player_id(self) -> int | None: ...
    @property
    def result(self) -> str | None: ...
    @property
    def end_reason(self) -> str | None: ...
    @property
    def move_count(self) -> int: ...


@dataclass(frozen=True)
class RatingMove:
    before: int
    after: int

    @property
    def change(self) -> int:
        return self.after - self.before


@dataclass(frozen=True)
class Summary:
    subject: str
    text: str


def outcome_for(match: FinishedMatch, player_id: int) -> str:
    """ "won", "lost" or "drew", from this player's side."""
    if match.result == "draw" or match.winner_player_id is None:
        return "drew"
    return "won" if match.winner_player_id == player_id else "lost"


def opponent_name(match: FinishedMatch, player_id: int, players: dict[int, Player]) -> str:
    other = match.second_player_id if match.first_player_id == player_id else match.first_player_id
    if other is None:
        return f"the bot (level {match.bot_level})" if match.bot_level else "the bot"
    opponent = players.get(other)
    if opponent is None:
        return "a former player"
    return opponent.display_name or opponent.handle


async def rating_move(
    connection: AsyncConnection, *, match_id: str, player_id: int
) -> RatingMove | None:
    """This match's rating change for the player, if the ratings capability recorded one."""
    has_history = await connection.run_sync(
        lambda sync: inspect(sync).has_table(RATING_HISTORY_TABLE)
    )
    if not has_history:
        return None
    row = (
        await connection.execute(
            text(
                f"SELECT mu_before, mu_after FROM {RATING_HISTORY_TABLE} "  # noqa: S608 - a constant
                "WHERE match_id = :match_id AND player_id = :player_id"
            ),
            {"match_id": match_id, "player_id": player_id},
        )
    ).first()
    if row is None:
        return None
    return RatingMove(before=round(row[0]), after=round(row[1]))


def compose(
    match: FinishedMatch,
    *,
    player: Player,
    players: dict[int, Player],
    rating: RatingMove | None,
    replay_url: str,
) -> Summary:
    outcome = outcome_for(match, player.id)
    opponent = opponent_name(match, player.id, players)
    headline = {"won": "You won", "lost": "You lost", "drew": "Draw"}[outcome]
    subject = f"{headline} against {opponent} · VEZE Connect Four"
    lines = [
        f"Hello {player.display_name or player.handle},",
        "",
        f"Your {match.mode} match against {opponent} is over.",
        "",
        f"Result:   {headline.lower() if outcome != 'drew' else 'a draw'}"
        + (f" by {END_REASONS[match.end_reason]}" if match.end_reason in END_REASONS else ""),
        f"Opponent: {opponent}",
        f"Moves:    {match.move_count}",
    ]
    if rating is not None:
        sign = "+" if rating.change >= 0 else ""
        lines.append(f"Rating:   {rating.before} -> {rating.after} ({sign}{rating.change})")
    lines += [
        "",
        f"Watch the replay: {replay_url}",
        "",
        "You get this mail because you switched on match summaries in your game settings.",
    ]
    return Summary(subject=subject[:200], text="\n".join(lines) + "\n")
