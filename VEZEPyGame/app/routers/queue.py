"""Matchmaking queues: join, cancel, status, live events (SSE), and the queue page."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession
from sse_starlette import EventSourceResponse

from VEZEPyCore.auth.principal import Principal
from VEZEPyCore.errors import AppError, BadRequest
from VEZEPyCore.events.bus import EVENTS_LOST
from VEZEPyCore.security.csrf import require_csrf
from VEZEPyCore.security.ratelimit import RateLimiter
from VEZEPyCore.web.deps import BusDep, SessionmakerDep
from VEZEPyCore.web.sso import PageUser
from VEZEPyCore.web.templates import render
from VEZEPyGame.app.deps import RegistryDep, SessionDep, SettingsDep
from VEZEPyGame.app.security import PlayPrincipal
from VEZEPyGame.db.competition import TICKET_WAITING, QueueTicket
from VEZEPyGame.db.models import Player
from VEZEPyGame.services.matches.service import get_match
from VEZEPyGame.services.matchmaking import tickets
from VEZEPyGame.services.matchmaking.config import CompetitionSettings
from VEZEPyGame.services.matchmaking.runtime import competition_settings
from VEZEPyGame.services.matchmaking.schemas import QueueJoin, QueueStatusRead, TicketRead
from VEZEPyGame.services.matchmaking.worker import player_channel
from VEZEPyGame.services.ratings.players import find_caller, handles, require_caller
from VEZEPyGame.services.registry import portal_url, webmail_url

#: How often the live status is refreshed when no event arrives (waited time, window, pool).
STATUS_REFRESH_SECONDS = 3.0
HEARTBEAT_SECONDS = 15

router = APIRouter(tags=["queue"])


def _competition(request: Request) -> CompetitionSettings:
    return competition_settings(request.app)


CompetitionDep = Annotated[CompetitionSettings, Depends(_competition)]


async def ticket_read(
    session: AsyncSession, ticket: QueueTicket, config: CompetitionSettings, *, pool: int
) -> TicketRead:
    now = datetime.now(UTC)
    waited = ((ticket.matched_at or now) - ticket.created_at).total_seconds()
    names = await handles(session, [ticket.opponent_id])
    return TicketRead(
        id=ticket.id,
        mode=ticket.mode,
        region=ticket.region,
        rating=round(ticket.rating),
        status=ticket.status,
        created_at=ticket.created_at,
        waited_seconds=round(max(waited, 0.0), 1),
        window=round(config.window.width(waited), 1),
        waiting_in_pool=pool,
        match_id=ticket.match_id,
        bot_level=ticket.bot_level,
        opponent_handle=names.get(ticket.opponent_id) if ticket.opponent_id else None,
        bot_fill=ticket.bot_fill,
    )


async def status_of(
    session: AsyncSession, player: Player, config: CompetitionSettings
) -> QueueStatusRead:
    found = await tickets.queue_status(session, player_id=player.id)
    if found.ticket is None:
        return QueueStatusRead(ticket=None)
    return QueueStatusRead(
        ticket=await ticket_read(session, found.ticket, config, pool=found.waiting_in_pool)
    )


async def join_queue(
    request: Request,
    session: AsyncSession,
    player: Player,
    body: QueueJoin,
    config: CompetitionSettings,
) -> TicketRead:
    limiter: RateLimiter = request.app.state.queue_limiter
    decision = await limiter.hit(
        f"game:queue-join:{player.id}", limit=config.matchmaker_joins_per_minute, window_seconds=60
    )
    decision.raise_if_refused("queue joins")
    region = body.region or player.region
    if body.region is not None and body.region not in config.regions:
        raise BadRequest(f"unknown region; one of: {', '.join(config.regions)}")
    ticket = await tickets.enqueue(
        session,
        player_id=player.id,
        mode=body.mode,
        region=region,
        now=datetime.now(UTC),
        bot_fill=body.accepts_bot,
    )
    await session.commit()
    request.app.state.matchmaker.wakeup.set()  # pair now, not at the next poll
    return await ticket_read(session, ticket, config, pool=0)


@router.post(
    "/api/queue",
    response_model=TicketRead,
    status_code=status.HTTP_201_CREATED,
    summary="Join a matchmaking queue",
    responses={
        400: {"description": "Unknown region"},
        404: {"description": "No player profile for this account"},
        409: {"description": "Already waiting in a queue, or still playing a match"},
        429: {"description": "Too many joins this minute (`Retry-After` says when to retry)"},
    },
)
async def create_ticket(
    request: Request,
    body: QueueJoin,
    principal: PlayPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    config: CompetitionDep,
) -> TicketRead:
    """Wait for an opponent of similar rating in a mode (ranked or casual) and region."""
    player = await require_caller(session, principal, mail_domain=settings.mail_domain)
    return await join_queue(request, session, player, body, config)


@router.get(
    "/api/queue",
    response_model=QueueStatusRead,
    summary="The caller's queue status",
    responses={404: {"description": "No player profile for this account"}},
)
async def read_queue_status(
    principal: PlayPrincipal, session: SessionDep, settings: SettingsDep, config: CompetitionDep
) -> QueueStatusRead:
    """The caller's latest ticket: waiting (with its widening window), matched or cancelled."""
    player = await require_caller(session, principal, mail_domain=settings.mail_domain)
    return await status_of(session, player, config)


@router.delete(
    "/api/queue",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Leave the queue",
    responses={404: {"description": "Not waiting in a queue"}},
)
async def cancel_ticket(
    principal: PlayPrincipal, session: SessionDep, settings: SettingsDep
) -> Response:
    """Cancel the caller's waiting ticket (a ticket already matched stays matched)."""
    player = await require_caller(session, principal, mail_domain=settings.mail_domain)
    await tickets.cancel(session, player_id=player.id)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/api/queue/events",
    summary="Live queue status and `match.found` (SSE)",
    response_class=EventSourceResponse,
    responses={404: {"description": "No player profile for this account"}},
)
async def stream_queue_events(
    request: Request,
    principal: PlayPrincipal,
    session: SessionDep,
    sessionmaker: SessionmakerDep,
    bus: BusDep,
    settings: SettingsDep,
    config: CompetitionDep,
) -> EventSourceResponse:
    """`status` events (at once and every few seconds) and the player's bus events, such as
    `match.found` with the new match's id."""
    player = await require_caller(session, principal, mail_domain=settings.mail_domain)
    player_id = player.id
    await session.close()  # the stream may last long; it opens short sessions as it goes

    async def current() -> dict[str, Any]:
        async with sessionmaker() as fresh:
            found = await fresh.get(Player, player_id)
            assert found is not None
            read = await status_of(fresh, found, config)
        return {"event": "status", "data": read.model_dump_json()}

    async def events() -> AsyncIterator[dict[str, Any]]:
        async with bus.subscribe(player_channel(player_id)) as subscription:
            yield await current()
            while True:
                received = await subscription.get(STATUS_REFRESH_SECONDS)
                # Nothing for a while, or events lost in a Redis outage: the status again.
                if received is None or received[1].get("type") == EVENTS_LOST:
                    yield await current()
                    continue
                _channel, event = received
                yield {"event": str(event.get("type", "message")), "data": json.dumps(event)}
                if event.get("type") == "match.found":
                    yield await current()

    metrics = request.app.state.game_metrics
    return EventSourceResponse(metrics.counted_stream("queue", events()), ping=HEARTBEAT_SECONDS)


# -- the page ------------------------------------------------------------------------------------


def page_context(
    request: Request, registry: Any, principal: Principal, player: Player | None
) -> dict[str, Any]:
    """What base.html needs on every game page."""
    return {
        "portal_url": portal_url(registry),
        "webmail_url": webmail_url(registry),
        "handle": player.handle if player else principal.claims.get("preferred_username"),
        "player": player,
    }


@router.get("/ui/queue", response_class=HTMLResponse, include_in_schema=False)
async def queue_page(
    request: Request,
    principal: PageUser,
    session: SessionDep,
    settings: SettingsDep,
    registry: RegistryDep,
    config: CompetitionDep,
    error: str | None = None,
) -> Response:
    """Join or leave the queue; the status updates live and the match opens when found."""
    player = await find_caller(session, principal, mail_domain=settings.mail_domain)
    current = await status_of(session, player, config) if player else None
    ticket = current.ticket if current else None
    if error is None and ticket is not None and ticket.match_id:
        # Matched before this page (and its live stream) loaded, as the second of two players
        # usually is: open the board rather than a "match found" notice to click through.
        found = await get_match(session, ticket.match_id)
        if found is not None and found.status == "active":
            return RedirectResponse(
                request.url_for("match_page", match_id=found.id), status_code=303
            )
    return render(
        request,
        "queue.html",
        {
            **page_context(request, registry, principal, player),
            "status": current,
            "regions": config.regions,
            "bot_after": config.bot_after,
            "waiting": bool(current and current.ticket and current.ticket.status == TICKET_WAITING),
            "error": error if error in _PAGE_ERRORS else None,
            "nav_current": "queue",
        },
    )


_PAGE_ERRORS = {"already-queued", "in-match", "not-queued", "no-player", "too-many"}


@router.post("/ui/queue/join", include_in_schema=False, dependencies=[Depends(require_csrf)])
async def join_from_page(
    request: Request,
    principal: PageUser,
    session: SessionDep,
    settings: SettingsDep,
    config: CompetitionDep,
    mode: Annotated[str, Form(max_length=16)] = "ranked",
    bot_fill: Annotated[bool, Form()] = False,
) -> RedirectResponse:
    """The page's join button (a form with the CSRF token); `bot_fill` is its checkbox."""
    target = request.url_for("queue_page")
    player = await find_caller(session, principal, mail_domain=settings.mail_domain)
    if player is None:
        return RedirectResponse(f"{target}?error=no-player", status_code=303)
    try:
        body = QueueJoin.model_validate({"mode": mode, "bot_fill": bot_fill})
        await join_queue(request, session, player, body, config)
    except AppError as exc:
        error = (
            "too-many"
            if exc.status_code == 429
            else "in-match"
            if "running match" in exc.detail
            else "already-queued"
        )
        return RedirectResponse(f"{target}?error={error}", status_code=303)
    except ValueError:
        raise BadRequest("unknown mode") from None
    return RedirectResponse(target, status_code=303)


@router.post("/ui/queue/cancel", include_in_schema=False, dependencies=[Depends(require_csrf)])
async def cancel_from_page(
    request: Request, principal: PageUser, session: SessionDep, settings: SettingsDep
) -> RedirectResponse:
    """The page's leave button."""
    target = request.url_for("queue_page")
    player = await find_caller(session, principal, mail_domain=settings.mail_domain)
    try:
        if player is None:
            raise BadRequest("no player")
        await tickets.cancel(session, player_id=player.id)
        await session.commit()
    except AppError:
        return RedirectResponse(f"{target}?error=not-queued", status_code=303)
    return RedirectResponse(target, status_code=303)
