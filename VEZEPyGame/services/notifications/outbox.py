"""Writing summaries to the outbox when a match ends (the `after_finished` hook's work).

One row per opted-in human player of the match, composed now and committed before the hook
returns; the worker delivers them. A second run for the same match adds nothing (unique
match and player), so a repeated hook cannot mail anyone twice.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyGame.db.models import Player
from VEZEPyGame.db.notifications import SummaryMail
from VEZEPyGame.services.notifications.summary import FinishedMatch, compose, rating_move


def message_id(match_id: str, player_id: int, domain: str) -> str:
    """Fixed per match and player, so Email's duplicate guard absorbs retried deliveries."""
    return f"<match-{match_id}-{player_id}@game.{domain}>"


def replay_url(game_public_url: str, match_id: str) -> str:
    return f"{game_public_url.rstrip('/')}/ui/matches/{match_id}"


async def enqueue_summaries(
    sessionmaker: async_sessionmaker[AsyncSession],
    match: FinishedMatch,
    *,
    game_public_url: str,
    mail_domain: str,
    wakeup: asyncio.Event | None = None,
) -> int:
    """Queue a summary for each opted-in human player of `match`; how many were queued."""
    ids = [pid for pid in (match.first_player_id, match.second_player_id) if pid is not None]
    now = datetime.now(UTC)
    async with sessionmaker() as session:
        players = {
            player.id: player
            for player in await session.scalars(select(Player).where(Player.id.in_(ids)))
        }
        rows: list[dict[str, Any]] = []
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
                    "status": "pending",
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
        await session.commit()
    if wakeup is not None:
        wakeup.set()  # after the commit: the worker's own session can see the rows now
    return len(rows)
