"""`GET /notifications/stream`: the header bell's live notifications (Server-Sent Events).

Authenticated by the portal's session cookie (EventSource sends cookies on same-origin
requests). The session is looked up with a short database session of its own: a stream that
lasts for hours must not hold a pooled connection. Open streams are counted in
`veze_sse_clients_connected{stream="notifications"}`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator
from typing import Any

from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse

from VEZEPyCore.errors import AppError, Unauthorized
from VEZEPyUniQVerse.services.accounts.deps import current_user
from VEZEPyUniQVerse.services.metrics import portal_metrics
from VEZEPyUniQVerse.services.notifications.hub import NotificationHub

HEARTBEAT_SECONDS = 15

router = APIRouter(tags=["notifications"], include_in_schema=False)


@router.get("/notifications/stream", name="notifications_stream")
async def stream_notifications(request: Request) -> EventSourceResponse:
    """`status` events ({"live": [sources]}) and `notification` events for the signed-in user."""
    async with request.app.state.sessionmaker() as db:
        info = await current_user(db, request)
    if info is None:
        raise Unauthorized("log in to receive notifications")
    user = info.user
    hub: NotificationHub = request.app.state.notifications
    hub.admit(user)  # refuse with a status code while one can still be sent

    async def events() -> AsyncGenerator[dict[str, Any], None]:
        async with contextlib.AsyncExitStack() as stack:
            try:
                tab = await stack.enter_async_context(hub.listen(user))
            except AppError:  # another tab took the last place since `admit`: end quietly
                return
            while True:
                item = await tab.get()
                if isinstance(item, frozenset):
                    yield {"event": "status", "data": json.dumps({"live": sorted(item)})}
                else:
                    yield {"event": "notification", "data": item.model_dump_json()}

    counted = portal_metrics(request.app).counted_stream("notifications", events())
    return EventSourceResponse(counted, ping=HEARTBEAT_SECONDS)
