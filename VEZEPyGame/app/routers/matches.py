"""Matches over the API: start a bot match, move, resign, read, history, replay, live events.

Only the two players may move or resign, and only they see an active match (anyone else gets
404); a finished match may be watched and replayed by anyone signed in. The caller is the
player the token speaks for (`preferred_username`, or the local part of a local address).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request, status
from sse_starlette import EventSourceResponse

from VEZEPyCore.auth.principal import Principal
from VEZEPyCore.errors import BadRequest, Conflict, NotFound
from VEZEPyCore.events.bus import EVENTS_LOST
from VEZEPyGame.app.deps import SettingsDep
from VEZEPyGame.app.security import PlayPrincipal
from VEZEPyGame.app.settings import GameSettings
from VEZEPyGame.db.models import Player
from VEZEPyGame.services.connect4 import IllegalMove, IllegalMoveReason
from VEZEPyGame.services.matches import flows, service
from VEZEPyGame.services.matches.draws import DRAW_OFFER_COOLDOWN_MOVES
from VEZEPyGame.services.matches.events import match_channel
from VEZEPyGame.services.matches.flows import MatchRuntime
from VEZEPyGame.services.matches.hooks import MatchHooks
from VEZEPyGame.services.matches.schemas import (
    MatchCreate,
    MatchListRead,
    MatchRead,
    MoveCreate,
    ReplayRead,
)
from VEZEPyGame.services.matches.tasks import start_matches
from VEZEPyGame.services.matches.views import move_reads, summary_read
from VEZEPyGame.services.players import service as players

HEARTBEAT_SECONDS = 15
#: Checked a little after the deadline, so the clock has surely run out when we look.
FLAG_GRACE_SECONDS = 0.05

router = APIRouter(prefix="/api/matches", tags=["matches"])


def _runtime(request: Request) -> MatchRuntime:
    runtime: MatchRuntime = request.app.state.match_runtime
    return runtime


RuntimeDep = Annotated[MatchRuntime, Depends(_runtime)]


async def player_for(runtime: MatchRuntime, principal: Principal, settings: GameSettings) -> Player:
    """The caller's player; 404 when the account has none (not provisioned yet)."""
    handle = players.handle_of(principal, mail_domain=settings.mail_domain)
    if handle:
        async with runtime.sessionmaker() as session:
            player = await players.get_player(session, handle=handle)
        if player is not None:
            return player
    raise NotFound("no player profile for this account yet")


async def _current_player(
    principal: PlayPrincipal, runtime: RuntimeDep, settings: SettingsDep
) -> Player:
    return await player_for(runtime, principal, settings)


#: The calling player. Opens its own short session: a stream must not hold one for hours.
PlayerDep = Annotated[Player, Depends(_current_player)]


def refusal(exc: IllegalMove) -> BadRequest | Conflict:
    """A rules refusal as HTTP: a bad column is the client's error, the rest a conflict."""
    if exc.reason is IllegalMoveReason.COLUMN_OUT_OF_RANGE:
        return BadRequest(exc.message, code=exc.reason.value)
    return Conflict(exc.message, code=exc.reason.value)


REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Column out of range (`column_out_of_range`)"},
    404: {"description": "No such match, or not one of the caller's"},
    409: {
        "description": "`not_your_turn`, `column_full`, `game_over`, `timeout` (the caller's "
        "flag had fallen: the match is lost on time) or `match_changed`"
    },
}


@router.post(
    "",
    response_model=MatchRead,
    status_code=status.HTTP_201_CREATED,
    summary="Start a match against the bot",
    responses={
        404: {"description": "No player profile for this account yet"},
        409: {"description": "`too_many_matches`: three bot matches are already running"},
    },
)
async def create_match(body: MatchCreate, player: PlayerDep, runtime: RuntimeDep) -> MatchRead:
    """A new match against the bot at `bot_level` (1 easy, 2 medium, 3 hard), in the seat you
    choose (`side`; with `second` the answer already holds the bot's opening move)."""
    return await flows.start_bot_match(
        runtime, player_id=player.id, level=body.bot_level, side=body.side
    )


@router.get("", response_model=MatchListRead, summary="The caller's matches, newest first")
async def list_matches(
    player: PlayerDep,
    runtime: RuntimeDep,
    status_filter: Annotated[Literal["active", "finished"] | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> MatchListRead:
    """Match history (and running matches to return to), with the caller's outcome."""
    async with runtime.sessionmaker() as session:
        matches = await service.list_player_matches(
            session, player_id=player.id, status=status_filter, limit=limit
        )
        seated = await service.players_of(session, matches)
    return MatchListRead(matches=[summary_read(match, player.id, seated) for match in matches])


@router.get(
    "/{match_id}",
    response_model=MatchRead,
    summary="A match's board, clocks and result",
    responses={404: REFUSALS[404]},
)
async def read_match(match_id: str, player: PlayerDep, runtime: RuntimeDep) -> MatchRead:
    """The current state; a match whose side to move ran out of time is ended first."""
    return await flows.read_match(runtime, match_id=match_id, player_id=player.id)


@router.post(
    "/{match_id}/moves",
    response_model=MatchRead,
    summary="Drop a stone",
    responses=REFUSALS,
)
async def play_move(
    match_id: str, body: MoveCreate, player: PlayerDep, runtime: RuntimeDep
) -> MatchRead:
    """Play `column` (0-6) when it is your turn. Against the bot, the answer includes its reply."""
    try:
        return await flows.play_move(
            runtime, match_id=match_id, player_id=player.id, column=body.column
        )
    except IllegalMove as exc:
        raise refusal(exc) from exc


@router.post(
    "/{match_id}/resign",
    response_model=MatchRead,
    summary="Resign",
    responses={404: REFUSALS[404], 409: {"description": "The match is already over"}},
)
async def resign_match(match_id: str, player: PlayerDep, runtime: RuntimeDep) -> MatchRead:
    """Give up the match (at any time, even on the opponent's turn): the opponent wins."""
    try:
        return await flows.resign(runtime, match_id=match_id, player_id=player.id)
    except IllegalMove as exc:
        raise refusal(exc) from exc


DRAW_REFUSALS: dict[int | str, dict[str, Any]] = {
    404: REFUSALS[404],
    409: {
        "description": (
            "The match is over, `draw_offered` (yours stands already), `draw_cooldown` (you"
            " offered one recently: make the moves the state's `draw_cooldown` names first),"
            " `no_draw_offer` (nothing to answer) or `match_changed`"
        )
    },
}


OFFER_DRAW_DESCRIPTION = (
    "Offer your opponent a draw (at any time, on either turn). It stands until they accept or"
    " decline it or the next stone is dropped; if theirs stood already, the match is drawn."
    " After an offer that does not end the match you must make"
    f" {DRAW_OFFER_COOLDOWN_MOVES} more moves before you offer again. The bot answers at once"
    " by its search (it accepts when it cannot win, or when it is clearly behind), so against"
    " it the answer already holds its verdict."
)


@router.post(
    "/{match_id}/draw",
    response_model=MatchRead,
    summary="Offer a draw",
    description=OFFER_DRAW_DESCRIPTION,
    responses=DRAW_REFUSALS,
)
async def offer_draw(match_id: str, player: PlayerDep, runtime: RuntimeDep) -> MatchRead:
    try:
        return await flows.offer_draw(runtime, match_id=match_id, player_id=player.id)
    except IllegalMove as exc:
        raise refusal(exc) from exc


@router.post(
    "/{match_id}/draw/accept",
    response_model=MatchRead,
    summary="Accept the opponent's draw offer",
    responses=DRAW_REFUSALS,
)
async def accept_draw(match_id: str, player: PlayerDep, runtime: RuntimeDep) -> MatchRead:
    """The match ends in a draw by agreement (rated matches count it as a draw)."""
    try:
        return await flows.answer_draw(runtime, match_id=match_id, player_id=player.id, accept=True)
    except IllegalMove as exc:
        raise refusal(exc) from exc


@router.post(
    "/{match_id}/draw/decline",
    response_model=MatchRead,
    summary="Decline the opponent's draw offer",
    responses=DRAW_REFUSALS,
)
async def decline_draw(match_id: str, player: PlayerDep, runtime: RuntimeDep) -> MatchRead:
    """The offer is withdrawn and play goes on."""
    try:
        return await flows.answer_draw(
            runtime, match_id=match_id, player_id=player.id, accept=False
        )
    except IllegalMove as exc:
        raise refusal(exc) from exc


@router.get(
    "/{match_id}/replay",
    response_model=ReplayRead,
    summary="Every move with its time and clock",
    responses={404: REFUSALS[404]},
)
async def replay_match(match_id: str, player: PlayerDep, runtime: RuntimeDep) -> ReplayRead:
    """The moves in order, for stepping through a match."""
    state = await flows.read_match(runtime, match_id=match_id, player_id=player.id)
    async with runtime.sessionmaker() as session:
        moves = await service.list_moves(session, match_id)
    return ReplayRead(match=state, moves=move_reads(moves))


@router.get(
    "/{match_id}/events",
    summary="Live match events (SSE)",
    response_class=EventSourceResponse,
    responses={404: REFUSALS[404]},
)
async def stream_match_events(
    match_id: str, player: PlayerDep, runtime: RuntimeDep, request: Request
) -> EventSourceResponse:
    """`state` first (the whole match), then `match.move` / `match.finished` as they happen.

    Every event carries the whole state. The stream also watches the running clock: at its
    deadline it ends the match on time if nobody moved, so a flag falls without any request.
    It ends after the match does; a reconnect gets the current state again.
    """
    await flows.read_match(runtime, match_id=match_id, player_id=player.id)  # 404 first

    async def events() -> AsyncIterator[dict[str, Any]]:
        async with runtime.bus.subscribe(match_channel(match_id)) as subscription:
            # Read after subscribing: a move between the two is in the state or in an event.
            state = await flows.read_match(runtime, match_id=match_id, player_id=player.id)
            yield {"event": "state", "data": state.model_dump_json()}
            deadline = _flag_deadline(state)
            while state.status == "active":
                wait: float = HEARTBEAT_SECONDS
                if deadline is not None:
                    wait = min(wait, max(0.0, deadline - time.monotonic()) + FLAG_GRACE_SECONDS)
                received = await subscription.get(wait)
                if received is None:
                    if deadline is not None and time.monotonic() >= deadline:
                        # Ends it on time if still overdue (and announces it to everyone).
                        state = await flows.read_match(
                            runtime, match_id=match_id, player_id=player.id
                        )
                        yield {"event": "state", "data": state.model_dump_json()}
                        deadline = _flag_deadline(state)
                    continue
                _channel, event = received
                if event.get("type") == EVENTS_LOST:
                    # Moves may have been missed (a Redis outage): the whole state again.
                    state = await flows.read_match(runtime, match_id=match_id, player_id=player.id)
                    yield {"event": "state", "data": state.model_dump_json()}
                    deadline = _flag_deadline(state)
                    continue
                state = MatchRead.model_validate(
                    {key: value for key, value in event.items() if key != "type"}
                )
                deadline = _flag_deadline(state)
                yield {"event": str(event.get("type", "message")), "data": json.dumps(event)}

    metrics = request.app.state.game_metrics
    return EventSourceResponse(metrics.counted_stream("match", events()), ping=HEARTBEAT_SECONDS)


def _flag_deadline(state: MatchRead) -> float | None:
    """When (monotonic) the running clock of `state` reaches zero; None once finished."""
    if state.clock.running is None:
        return None
    left = state.clock.first_ms if state.clock.running == "first" else state.clock.second_ms
    return time.monotonic() + left / 1000


def install_matches(app: FastAPI) -> None:
    """Add matches to a built app: the API and pages, `app.state.match_hooks` (for ratings
    and mail to register on before start-up) and the match runtime inside its lifespan."""
    from VEZEPyGame.app.routers import match_pages

    app.state.match_hooks = MatchHooks()
    app.include_router(router)
    app.include_router(match_pages.router)
    outer = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(target: FastAPI) -> AsyncIterator[Any]:
        async with outer(target) as state, start_matches(app):
            yield state

    app.router.lifespan_context = lifespan
