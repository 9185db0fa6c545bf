"""Where a person's events come from: Email's and Game's live streams.

- Mail: with Redis configured, the portal subscribes to the mailbox's bus channel
  (`email:events:{address}`) itself; without Redis each service's bus lives inside that
  service's process, so the portal follows Email's `GET /api/events` stream instead, with a
  token minted for the person.
- Game: always Game's `GET /api/queue/events` stream with the person's token. Its
  `game:player:{id}` channel is keyed by Game's internal player id, which Game does not expose,
  and the stream already carries those events (from Redis or its in-process bus).

Each source reconnects with a capped back-off, re-minting its token every time.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

from VEZEPyCore.auth import scopes
from VEZEPyCore.events.bus import EventBus
from VEZEPyCore.services.http import ServiceClients
from VEZEPyUniQVerse.db.models import User
from VEZEPyUniQVerse.services.hub.tokens import user_token
from VEZEPyUniQVerse.services.hub.upstream import call_json
from VEZEPyUniQVerse.services.notifications import translate
from VEZEPyUniQVerse.services.notifications.schemas import Notification
from VEZEPyUniQVerse.services.notifications.sse import read_events

log = logging.getLogger(__name__)

Emit = Callable[[Notification], None]
MarkLive = Callable[[str, bool], None]

FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 30.0
#: Both services send a heartbeat at least every 15 s; silence for this long means a dead link.
READ_TIMEOUT_SECONDS = 45.0


class Sources:
    """The upstream subscriptions of one person, run as long as someone is listening."""

    def __init__(self, app_state: Any, user: User, *, emit: Emit, mark_live: MarkLive) -> None:
        self.app_state = app_state
        self.user = user
        self.settings = app_state.settings
        self.address = f"{user.handle}@{self.settings.mail_domain}"
        self.emit = emit
        self.mark_live = mark_live

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._forever("mail", self._mail))
            group.create_task(self._forever("game", self._game))

    async def _forever(self, name: str, follow: Callable[[], Awaitable[None]]) -> None:
        delay = FIRST_RETRY_SECONDS
        while True:
            try:
                await follow()
                delay = FIRST_RETRY_SECONDS  # a clean end (the service restarted): reconnect
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a source must never take the others down
                log.info("notification source %s for %s lost: %r", name, self.user.id, exc)
            self.mark_live(name, False)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)

    def _url(self, service: str, path: str) -> str | None:
        try:
            return f"{self.app_state.registry.public_url(service)}{path}"
        except KeyError:
            return None

    async def _mail(self) -> None:
        inbox = self._url("email", "/ui/inbox")
        if self.settings.redis_url:
            bus: EventBus = self.app_state.bus
            async with bus.subscribe(f"email:events:{self.address}") as subscription:
                self.mark_live("mail", True)
                async for _channel, event in subscription:
                    self._emit(translate.mail_notification(event, inbox_url=inbox))
            return
        token = await user_token(
            self.app_state,
            user=self.user,
            audience=self.settings.email_aud,
            scopes=[scopes.EMAIL_READ],
        )
        async with self._stream("email", "/api/events", token, {"user": self.address}) as response:
            async for item in read_events(response):
                if item.event == "ready":
                    self.mark_live("mail", True)
                    continue
                self._emit(translate.mail_notification(_json(item.data), inbox_url=inbox))

    async def _game(self) -> None:
        match_url = self._url("game", "/ui/matches/")
        token = await user_token(
            self.app_state,
            user=self.user,
            audience=self.settings.game_aud,
            scopes=[scopes.GAME_PLAY],
        )
        async with self._stream("game", "/api/queue/events", token, {}) as response:
            async for item in read_events(response):
                if item.event == "status":
                    self.mark_live("game", True)
                elif item.event == "match.found":
                    self._emit(translate.match_found(_json(item.data), match_url=match_url))
                elif item.event == "match.finished":
                    event = _json(item.data)
                    match_id = event.get("match_id")
                    if isinstance(match_id, str):
                        self.emit(await self._result(match_id, token, match_url))

    async def _result(self, match_id: str, token: str, match_url: str | None) -> Notification:
        """The outcome as this person sees it (the event names players by Game's ids)."""
        outcome = opponent = None
        try:
            clients: ServiceClients = self.app_state.clients
            body = await call_json(
                clients,
                "game",
                "GET",
                "/api/matches",
                token=token,
                deadline_seconds=self.settings.http_timeout_seconds,
                params={"status": "finished", "limit": 10},
            )
            for summary in body["matches"]:
                if summary["id"] == match_id:
                    outcome, opponent = summary.get("outcome"), summary.get("opponent")
        except Exception as exc:  # still tell them it ended
            log.info("match %s outcome unavailable: %r", match_id, exc)
        return translate.match_result(match_id, outcome, opponent, match_url=match_url)

    @asynccontextmanager
    async def _stream(
        self, service: str, path: str, token: str, params: dict[str, str]
    ) -> AsyncIterator[httpx.Response]:
        """An open 200 `text/event-stream` response, or an exception."""
        clients: ServiceClients = self.app_state.clients
        client = await clients.client(service)
        async with client.stream(
            "GET",
            path,
            params=params,
            headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream"},
            timeout=httpx.Timeout(self.settings.http_timeout_seconds, read=READ_TIMEOUT_SECONDS),
        ) as response:
            if response.status_code != 200:
                raise RuntimeError(f"{service} stream answered HTTP {response.status_code}")
            yield response

    def _emit(self, notification: Notification | None) -> None:
        if notification is not None:
            self.emit(notification)


def _json(data: str) -> dict[str, Any]:
    value = json.loads(data)
    return value if isinstance(value, dict) else {}
