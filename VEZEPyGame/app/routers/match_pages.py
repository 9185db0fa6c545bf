"""Game pages: the lobby, the board, match history and replay.

Pages render the first state on the server; `static/match.js` then follows the match's event
stream and sends moves through the JSON API with the session cookie and the CSRF header.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import NoMatchFound

from VEZEPyCore.auth.principal import Principal
from VEZEPyCore.errors import AppError
from VEZEPyCore.security.csrf import csrf_token, require_csrf
from VEZEPyCore.web.sso import PageUser
from VEZEPyCore.web.templates import render
from VEZEPyGame.app.deps import RegistryDep, SettingsDep
from VEZEPyGame.app.routers.matches import RuntimeDep, player_for
from VEZEPyGame.db.models import Player
from VEZEPyGame.services.bot import BOT_LEVELS
from VEZEPyGame.services.matches import flows, service
from VEZEPyGame.services.matches.views import move_reads, summary_read
from VEZEPyGame.services.registry import portal_url, webmail_url
from VEZEPyGame.services.store.board import board_style

router = APIRouter(tags=["pages"], include_in_schema=False)

#: How many past matches the lobby shows (the history page shows more).
HISTORY_LIMIT = 100


def _has_route(request: Request, name: str) -> bool:
    try:
        request.url_for(name)
    except NoMatchFound:
        return False
    return True


async def _player_or_none(
    runtime: flows.MatchRuntime, principal: Principal, settings: Any
) -> Player | None:
    try:
        return await player_for(runtime, principal, settings)
    except AppError:
        return None


def _context(
    request: Request, registry: Any, principal: Principal, player: Player | None, nav: str
) -> dict[str, Any]:
    return {
        "portal_url": portal_url(registry),
        "webmail_url": webmail_url(registry),
        "handle": player.handle if player else principal.claims.get("preferred_username"),
        "player": player,
        "nav_current": nav,
    }


def _no_player(request: Request, context: dict[str, Any]) -> HTMLResponse:
    return render(request, "no_player.html", context, status_code=404)


@router.get("/ui/play", response_class=HTMLResponse)
async def lobby_page(
    request: Request,
    principal: PageUser,
    runtime: RuntimeDep,
    settings: SettingsDep,
    registry: RegistryDep,
    error: str | None = None,
) -> HTMLResponse:
    """Start a game: ranked or casual (with or without a bot after the wait) or the bot (level
    and seat). Running matches are listed first: a search waits until they are over."""
    player = await _player_or_none(runtime, principal, settings)
    context = _context(request, registry, principal, player, "play")
    if player is None:
        return _no_player(request, context)
    async with runtime.sessionmaker() as session:
        active = await service.list_player_matches(session, player_id=player.id, status="active")
        seated = await service.players_of(session, active)
    return render(
        request,
        "lobby.html",
        {
            **context,
            "active": [summary_read(match, player.id, seated) for match in active],
            "bot_levels": list(BOT_LEVELS.values()),
            "queue_join": _has_route(request, "join_from_page"),
            "clock_seconds": settings.match_clock_seconds,
            "increment_seconds": settings.match_increment_seconds,
            "too_many": error == "too-many",
            "bot_after": settings.bot_after,
        },
    )


@router.post("/ui/play/bot", dependencies=[Depends(require_csrf)])
async def start_bot_from_page(
    request: Request,
    principal: PageUser,
    runtime: RuntimeDep,
    settings: SettingsDep,
    bot_level: Annotated[int, Form(ge=1, le=3)] = 2,
    side: Annotated[Literal["first", "second"], Form()] = "first",
) -> Response:
    """The lobby's bot buttons (a form with the CSRF token): start and open the match."""
    player = await player_for(runtime, principal, settings)
    try:
        state = await flows.start_bot_match(
            runtime, player_id=player.id, level=bot_level, side=side
        )
    except AppError as exc:
        if exc.code != "too_many_matches":
            raise
        return RedirectResponse(f"{request.url_for('lobby_page')}?error=too-many", status_code=303)
    return RedirectResponse(request.url_for("match_page", match_id=state.id), status_code=303)


@router.get("/ui/matches/{match_id}", response_class=HTMLResponse)
async def match_page(
    request: Request,
    match_id: str,
    principal: PageUser,
    runtime: RuntimeDep,
    settings: SettingsDep,
    registry: RegistryDep,
) -> HTMLResponse:
    """The board: live for the players (and for watchers once finished)."""
    player = await _player_or_none(runtime, principal, settings)
    context = _context(request, registry, principal, player, "play")
    if player is None:
        return _no_player(request, context)
    try:
        state = await flows.read_match(runtime, match_id=match_id, player_id=player.id)
    except AppError:
        return render(request, "match_missing.html", context, status_code=404)
    side = None
    if state.first.player_id == player.id:
        side = "first"
    elif state.second.player_id == player.id:
        side = "second"
    return render(
        request,
        "match.html",
        {
            **context,
            "match": state,
            "my_side": side,
            "state_json": state.model_dump_json(),
            "csrf": csrf_token(request),
            # Equipped cosmetics (the store): stone colours and the viewer's board theme.
            "board_style": await board_style(
                runtime.sessionmaker,
                request.app.state.store_catalogue,
                viewer_id=player.id,
                first_player_id=state.first.player_id,
                second_player_id=state.second.player_id,
            ),
        },
    )


@router.get("/ui/history", response_class=HTMLResponse)
async def history_page(
    request: Request,
    principal: PageUser,
    runtime: RuntimeDep,
    settings: SettingsDep,
    registry: RegistryDep,
) -> HTMLResponse:
    """Every match of the signed-in player, newest first, with links to replay them."""
    player = await _player_or_none(runtime, principal, settings)
    context = _context(request, registry, principal, player, "history")
    if player is None:
        return _no_player(request, context)
    async with runtime.sessionmaker() as session:
        matches = await service.list_player_matches(
            session, player_id=player.id, limit=HISTORY_LIMIT
        )
        seated = await service.players_of(session, matches)
    return render(
        request,
        "history.html",
        {**context, "matches": [summary_read(match, player.id, seated) for match in matches]},
    )


@router.get("/ui/matches/{match_id}/replay", response_class=HTMLResponse)
async def replay_page(
    request: Request,
    match_id: str,
    principal: PageUser,
    runtime: RuntimeDep,
    settings: SettingsDep,
    registry: RegistryDep,
) -> HTMLResponse:
    """Step through a match move by move."""
    player = await _player_or_none(runtime, principal, settings)
    context = _context(request, registry, principal, player, "history")
    if player is None:
        return _no_player(request, context)
    try:
        state = await flows.read_match(runtime, match_id=match_id, player_id=player.id)
    except AppError:
        return render(request, "match_missing.html", context, status_code=404)
    async with runtime.sessionmaker() as session:
        moves = move_reads(await service.list_moves(session, match_id))
    return render(
        request,
        "replay.html",
        {
            **context,
            "match": state,
            "moves": moves,
            "moves_json": "[" + ",".join(move.model_dump_json() for move in moves) + "]",
            "state_json": state.model_dump_json(),
            "board_style": await board_style(
                runtime.sessionmaker,
                request.app.state.store_catalogue,
                viewer_id=player.id,
                first_player_id=state.first.player_id,
                second_player_id=state.second.player_id,
            ),
        },
    )
