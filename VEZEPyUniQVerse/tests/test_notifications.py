"""Live notifications: service events fanned in once per person, out to each open tab.

Real Email (with its SMTP listener) and Game on real ports; mail arrives over SMTP, a match
is found by Game's matchmaker, and the portal's `/notifications/stream` carries both.
"""

from __future__ import annotations

import asyncio
import json
import smtplib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
from sqlalchemy import select

from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyGame.app.settings import GameSettings
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.db.models import User
from VEZEPyUniQVerse.services.hub.tokens import user_token
from VEZEPyUniQVerse.services.notifications.hub import NotificationHub
from VEZEPyUniQVerse.services.notifications.sse import read_events
from VEZEPyUniQVerse.tests.hub_support import Person, Platform, platform, sign_up

WAIT_SECONDS = 20.0


class Tab:
    """One open `/notifications/stream`, read in the background."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        #: Everything received, read or not.
        self.seen: list[tuple[str, dict[str, Any]]] = []

    async def next(self, event: str, **match: Any) -> dict[str, Any]:
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                name, data = await self.events.get()
                if name == event and all(data.get(k) == v for k, v in match.items()):
                    return data

    async def live(self, *sources: str) -> None:
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                name, data = await self.events.get()
                if name == "status" and set(sources) <= set(data["live"]):
                    return


@asynccontextmanager
async def open_tab(person: Person) -> AsyncIterator[Tab]:
    tab = Tab()
    async with person.client.stream("GET", "/notifications/stream", timeout=None) as response:
        assert response.status_code == 200

        async def pump() -> None:
            async for item in read_events(response):
                received = (item.event, json.loads(item.data))
                tab.seen.append(received)
                await tab.events.put(received)

        task = asyncio.create_task(pump())
        try:
            yield tab
        finally:
            task.cancel()


def send_smtp(port: int, to: str, subject: str) -> None:
    message = (
        f"From: carol@example.org\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@example.org>\r\n\r\nHello.\r\n"
    )
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail("carol@example.org", [to], message.encode())


async def wait_until(probe: Any, what: str) -> None:
    async with asyncio.timeout(WAIT_SECONDS):
        while not probe():
            await asyncio.sleep(0.02)


async def game_call(plat: Platform, person: Person, path: str, body: Any) -> None:
    """POST to Game as `person`, with a token the portal mints for them."""
    state = plat.portal_app.state
    async with state.sessionmaker() as db:
        user = await db.scalar(select(User).where(User.handle == person.handle))
    assert user is not None
    token = await user_token(state, user=user, audience="veze-game", scopes=["game.play"])
    async with httpx.AsyncClient(base_url=plat.game) as game:
        response = await game.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code in (200, 201), response.text


async def test_mail_and_match_reach_every_tab_through_one_upstream_per_person(
    portal_settings: PortalSettings, email_settings: EmailSettings, game_settings: GameSettings
) -> None:
    async with (
        platform(portal_settings, email_settings, game_settings, smtp=True) as plat,
        AsyncExitStack() as stack,
    ):
        hub: NotificationHub = plat.portal_app.state.notifications
        ann = await sign_up(stack, plat, "nan")
        ben = await sign_up(stack, plat, "nben")
        first = await stack.enter_async_context(open_tab(ann))
        second = await stack.enter_async_context(open_tab(ann))
        bens = await stack.enter_async_context(open_tab(ben))
        for tab in (first, second, bens):
            await tab.live("mail", "game")
        assert hub.upstream_count() == 2  # Ann's two tabs share one upstream

        await asyncio.to_thread(send_smtp, plat.mx_port(), ann.address, "Quarterly numbers")
        in_first = await first.next("notification", kind="mail.new")
        in_second = await second.next("notification", kind="mail.new")

        await game_call(plat, ann, "/api/queue", {"mode": "ranked"})
        await game_call(plat, ben, "/api/queue", {"mode": "ranked"})
        found_by_ann = await first.next("notification", kind="match.found")
        found_by_ben = await bens.next("notification", kind="match.found")
        match_id = found_by_ann["link"].rsplit("/", 1)[-1]
        await game_call(plat, ann, f"/api/matches/{match_id}/resign", None)
        ann_result = await first.next("notification", kind="match.result")
        ben_result = await bens.next("notification", kind="match.result")
        ben_saw_mail = any(
            name == "notification" and data["kind"] == "mail.new" for name, data in bens.seen
        )

    for note in (in_first, in_second):
        assert note["title"] == "New mail from carol@example.org"
        assert note["text"] == "Quarterly numbers"
        assert note["link"] == f"{plat.email}/ui/inbox"
    assert not ben_saw_mail
    assert found_by_ann["title"] == found_by_ben["title"] == "Match found"
    assert found_by_ann["link"] == found_by_ben["link"]
    assert found_by_ann["link"].startswith(f"{plat.game}/ui/matches/")
    assert ann_result["text"] == f"You lost against {ben.handle}."
    assert ben_result["text"] == f"You won against {ann.handle}."
    assert ann_result["link"] == ben_result["link"] == found_by_ann["link"]


async def test_upstreams_stop_with_the_last_tab_and_are_bounded(
    portal_settings: PortalSettings, email_settings: EmailSettings, game_settings: GameSettings
) -> None:
    async with (
        platform(portal_settings, email_settings, game_settings) as plat,
        AsyncExitStack() as stack,
    ):
        hub: NotificationHub = plat.portal_app.state.notifications
        hub.max_tabs = 2
        person = await sign_up(stack, plat, "bound")
        anonymous = await stack.enter_async_context(httpx.AsyncClient(base_url=plat.portal))
        refused_anonymous = await anonymous.get("/notifications/stream")
        async with open_tab(person) as one, open_tab(person):
            await one.live("mail")
            third = await person.client.get("/notifications/stream")
            assert hub.upstream_count() == 1
        await wait_until(lambda: hub.upstream_count() == 0, "the upstream to stop")

    assert refused_anonymous.status_code == 401
    assert third.status_code == 429
