"""Writing summaries to the outbox when a match ends (the `on_finished` hook's work).

One row per opted-in human player of the match, composed now and written in the transaction
that records the result: the result and its summaries commit together, so no crash can keep
one without the other (ADR 0017; ADR 0011 queued them after the commit and could lose them).
The worker delivers them. A second run for the same match adds nothing (unique match and
player), so a repeated hook cannot mail anyone twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyCore.queue import QueueDefinition, QueueTable
from VEZEPyGame.app.settings import GameSettings
from VEZEPyGame.db.models import Player
from VEZEPyGame.db.notifications import SummaryMail
from VEZEPyGame.services.notifications.summary import FinishedMatch, compose, rating_move

#: The outbox as a VEZEPyCore queue: `sent` when delivered, `failed` the dead letters.
SUMMARY_MAIL = QueueTable(
    name="game.summary-mail", model=SummaryMail, waiting="pending", done="sent", dead="failed"
)
QUEUE = QueueDefinition(table=SUMMARY_MAIL, settings=GameSettings)


def message_id(match_id: str, player_id: int, domain: str) -> str:
    """Fixed per match and player, so Email's duplicate guard absorbs retried deliveries."""
    return f"<match-{match_id}-{player_id}@game.{domain}>"


def replay_url(game_public_url: str, match_id: str) -> str:
    return f"{game_public_url.rstrip('/')}/ui/matches/{match_id}"


async def add_summaries(
    session: AsyncSession,
    match: FinishedMatch,
    *,
    game_public_url: str,
    mail_domain: str,
) -> int:
    """Add a summary for each opted-in human player of `match` to the caller's transaction
    (the one recording the result, which commits it); how many were added."""
    ids = [pid for pid in (match.first_player_id, match.second_player_id) if pid is not None]
    now = datetime.now(UTC)
    players = {
        player.id: player
        for player in await session.scalars(select(Player).where(Player.id.in_(ids)))
    }
    rows: list[dict[str, Any]] = []
    # The same connection as the result: it sees the rating the ratings hook just wrote.
    connection = await session.connection()
    for player_id in ids:
        player = players.get(player_id)
        if player is None or not player.mail_opt_in:
            continue
        summary = compose(
            match,
            player=player,
            players=players,
            rating=await rating_move(connection, match_id=match.id, player_id=player_id),
            replay_url=replay_url(game_public_url, match.id),
        )
        rows.append(
            {
                "match_id": match.id,
                "player_id": player_id,
                "address": f"{player.handle}@{mail_domain}",
                "subject": summary.subject,
                "body": summary.text,
                "message_id": message_id(match.id, player_id, mail_domain),
                "status": SUMMARY_MAIL.waiting,
                "attempts": 0,
                "last_error": None,
                "next_attempt_at": now,
                "lease_token": None,
                "created_at": now,
                "updated_at": now,
            }
        )
    if not rows:
        return 0
    index = ["match_id", "player_id"]
    if session.get_bind().dialect.name == "postgresql":
        statement: Any = postgresql.insert(SummaryMail).values(rows)
    else:
        statement = sqlite.insert(SummaryMail).values(rows)
    await session.execute(statement.on_conflict_do_nothing(index_elements=index))
    return len(rows)


async def waiting_summaries(session: AsyncSession, *, match_id: str) -> list[int]:
    """Ids of `match_id`'s summaries still waiting (to dispatch them after the commit)."""
    return await SUMMARY_MAIL.waiting_ids(session, where=SummaryMail.match_id == match_id)
