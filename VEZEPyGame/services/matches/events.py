"""Match events on the bus (Redis pub/sub when configured, so every worker streams them).

- `game:match:{id}`: `match.started`, `match.move`, `match.draw`, `match.finished`, each with
  the whole public state (`MatchRead`), so a page renders the last event it got and needs no
  merging.
- `game:player:{player_id}`: `match.started` and `match.finished` with the match's id, mode
  and result, for the lobby and queue pages (and later the portal).
"""

from __future__ import annotations

from typing import Any

from VEZEPyCore.events.bus import EventBus
from VEZEPyGame.db.matches import Match
from VEZEPyGame.services.matches.schemas import MatchRead

STARTED = "match.started"
MOVED = "match.move"
FINISHED = "match.finished"
#: A draw offer made or declined (the state's `draw_offer` says which side's stands, if any).
DRAW = "match.draw"


def match_channel(match_id: str) -> str:
    return f"game:match:{match_id}"


def player_channel(player_id: int) -> str:
    return f"game:player:{player_id}"


def player_event(kind: str, match: Match) -> dict[str, Any]:
    return {
        "type": kind,
        "match_id": match.id,
        "mode": match.mode,
        "status": match.status,
        "result": match.result,
        "end_reason": match.end_reason,
        "winner_player_id": match.winner_player_id,
        "first_player_id": match.first_player_id,
        "second_player_id": match.second_player_id,
    }


async def publish_state(bus: EventBus, kind: str, state: MatchRead) -> None:
    await bus.publish(match_channel(state.id), {"type": kind, **state.model_dump(mode="json")})


async def publish_to_players(bus: EventBus, kind: str, match: Match) -> None:
    event = player_event(kind, match)
    for player_id in (match.first_player_id, match.second_player_id):
        if player_id is not None:
            await bus.publish(player_channel(player_id), event)


async def publish_match_started(bus: EventBus, match: Match) -> None:
    """Tell both players a match has started. Call it after the commit that created it."""
    await publish_to_players(bus, STARTED, match)
