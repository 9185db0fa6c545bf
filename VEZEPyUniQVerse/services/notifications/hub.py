"""Fan-in of service events to the browsers of each signed-in person.

One upstream subscription per person per process, however many tabs they have open: the
first listener starts it, the last one to leave stops it. Everything is bounded: the number
of people followed at once, the tabs per person, and each tab's queue (the oldest
notification is dropped when a tab reads too slowly, never the publisher blocked).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from VEZEPyCore.errors import AppError
from VEZEPyCore.tasks import cancel_and_wait
from VEZEPyUniQVerse.db.models import User
from VEZEPyUniQVerse.services.notifications.schemas import Notification
from VEZEPyUniQVerse.services.notifications.sources import Sources

MAX_PEOPLE = 1000
MAX_TABS_PER_PERSON = 8
TAB_QUEUE_SIZE = 32

#: What a tab receives: a notification, or the set of sources that are live right now.
Item = Notification | frozenset[str]


class TooManyListeners(AppError):
    status_code, code = 429, "too_many_listeners"


class NotificationsBusy(AppError):
    status_code, code = 503, "notifications_busy"


@dataclass
class _Feed:
    task: asyncio.Task[None] | None = None
    tabs: set[asyncio.Queue[Item]] = field(default_factory=set)
    live: set[str] = field(default_factory=set)

    def deliver(self, item: Item) -> None:
        for tab in self.tabs:
            if tab.full():
                tab.get_nowait()
            tab.put_nowait(item)

    def mark_live(self, source: str, live: bool) -> None:
        before = frozenset(self.live)
        (self.live.add if live else self.live.discard)(source)
        if frozenset(self.live) != before:
            self.deliver(frozenset(self.live))


class NotificationHub:
    def __init__(
        self,
        app_state: Any,
        *,
        max_people: int = MAX_PEOPLE,
        max_tabs: int = MAX_TABS_PER_PERSON,
    ) -> None:
        self.app_state = app_state
        self.max_people = max_people
        self.max_tabs = max_tabs
        self._feeds: dict[int, _Feed] = {}

    def upstream_count(self) -> int:
        """How many people have a live upstream subscription in this process."""
        return sum(1 for feed in self._feeds.values() if feed.task is not None)

    def admit(self, user: User) -> None:
        """Raise the refusal `listen` would raise now, before a response has started."""
        feed = self._feeds.get(user.id)
        if feed is None and len(self._feeds) >= self.max_people:
            raise NotificationsBusy("live notifications are at capacity; try again later")
        if feed is not None and len(feed.tabs) >= self.max_tabs:
            raise TooManyListeners("too many open notification streams for this account")

    @asynccontextmanager
    async def listen(self, user: User) -> AsyncIterator[asyncio.Queue[Item]]:
        self.admit(user)
        feed = self._feeds.get(user.id)
        if feed is None:
            feed = self._feeds[user.id] = _Feed()
        tab: asyncio.Queue[Item] = asyncio.Queue(TAB_QUEUE_SIZE)
        feed.tabs.add(tab)
        tab.put_nowait(frozenset(feed.live))
        if feed.task is None:
            sources = Sources(self.app_state, user, emit=feed.deliver, mark_live=feed.mark_live)
            feed.task = asyncio.create_task(sources.run(), name=f"notifications:{user.id}")
        try:
            yield tab
        finally:
            feed.tabs.discard(tab)
            if not feed.tabs:
                self._feeds.pop(user.id, None)
                await cancel_and_wait(feed.task)

    async def aclose(self) -> None:
        feeds, self._feeds = list(self._feeds.values()), {}
        for feed in feeds:
            await cancel_and_wait(feed.task)


@asynccontextmanager
async def notification_hub(app: FastAPI) -> AsyncIterator[None]:
    """Start-up hook: the hub on `app.state`, every upstream closed at shutdown."""
    hub = NotificationHub(app.state)
    app.state.notifications = hub
    try:
        yield
    finally:
        await hub.aclose()
