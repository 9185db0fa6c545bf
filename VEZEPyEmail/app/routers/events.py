"""`GET /api/events`: the mailbox's live events as Server-Sent Events.

The per-user channel comes from the bus (Redis pub/sub when configured, in-process otherwise).
A `ready` event is sent once the subscription is live; comments keep the connection warm. An
`events.lost` event says the bus lost events meanwhile (a Redis outage): the client refetches.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sse_starlette import EventSourceResponse

from VEZEPyEmail.app.deps import BusDep, SettingsDep
from VEZEPyEmail.app.security import ReadPrincipal, authorize_mailbox, normalise_local_address
from VEZEPyEmail.streaming.events import user_channel

HEARTBEAT_SECONDS = 15

router = APIRouter(prefix="/api", tags=["events"])


@router.get("/events", summary="Live mailbox events (SSE)", response_class=EventSourceResponse)
async def stream_events(
    request: Request,
    principal: ReadPrincipal,
    bus: BusDep,
    settings: SettingsDep,
    user: Annotated[str | None, Query(max_length=320)] = None,
) -> EventSourceResponse:
    address = normalise_local_address(user or principal.address or "", settings.mail_domain)
    authorize_mailbox(principal, address)

    connected = request.app.state.email_metrics.sse_clients

    async def events() -> AsyncIterator[dict[str, Any]]:
        connected.inc()
        try:
            async with bus.subscribe(user_channel(address)) as subscription:
                yield {"event": "ready", "data": json.dumps({"user": address})}
                async for _channel, event in subscription:
                    yield {"event": str(event.get("type", "message")), "data": json.dumps(event)}
        finally:
            connected.dec()

    return EventSourceResponse(events(), ping=HEARTBEAT_SECONDS)
