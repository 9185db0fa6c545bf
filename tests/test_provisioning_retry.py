"""Sign-up while Email (or Game) is down: the account exists at once, provisioning is retried
from the queue, and once the service is back there is exactly one mailbox with one welcome mail
and exactly one player.

Portal, Email and Game run in this process with their lifespans; the portal's worker reaches
them in-process once they are "up" (mounted) and a closed loopback port while they are "down".
Game and Email verify the portal's service tokens through its JWKS, as in production.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from VEZEPyEmail.app.main import create_app as create_email_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.db.models import Mailbox
from VEZEPyGame.app.main import create_app as create_game_app
from VEZEPyGame.app.settings import GameSettings
from VEZEPyGame.db.models import Player
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.services.provisioning.queue import provisioning_status
from VEZEPyUniQVerse.services.provisioning.schemas import ProvisioningTaskRead
from VEZEPyUniQVerse.tests.accounts_helpers import portal, unique
from VEZEPyUniQVerse.tests.helpers import bearer, dead_url
from VEZEPyUniQVerse.tests.provisioning_helpers import fast_settings, trusting_portal, wait_for

Running = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]
Minter = Callable[..., str]
DOMAIN = "vezeuniqverse.com"


async def count(app: FastAPI, model: Any, **where: str) -> int:
    async with app.state.sessionmaker() as session:
        statement = select(func.count()).select_from(model)
        for column, value in where.items():
            statement = statement.where(getattr(model, column) == value)
        return int(await session.scalar(statement) or 0)


@pytest.mark.parametrize("down", ["email", "game"])
async def test_provisioning_is_retried_until_the_service_is_back_and_happens_once(
    portal_settings: PortalSettings,
    email_settings: EmailSettings,
    game_settings: GameSettings,
    running: Running,
    mint: Minter,
    down: str,
) -> None:
    email_app = create_email_app(email_settings)
    game_app = create_game_app(game_settings)
    apps = {"email": email_app, "game": game_app}
    settings = fast_settings(portal_settings, service_urls={down: dead_url()})
    handle = unique("alice")
    address = f"{handle}@{DOMAIN}"

    async with (
        running(email_app) as email,
        running(game_app) as game,
        portal(settings) as site,
        trusting_portal(email_app, site.app, audience=email_settings.email_aud),
        trusting_portal(game_app, site.app, audience=game_settings.game_aud),
    ):
        up = "game" if down == "email" else "email"
        site.app.state.clients.mount(up, apps[up])

        async def status() -> dict[str, ProvisioningTaskRead]:
            async with site.db() as db:
                entries = await provisioning_status(db, handle=handle)
            return {entry.target: entry for entry in entries}

        browser = await site.browser()
        signed_up = await browser.signup(handle.title(), display_name="Alice A.")
        assert signed_up.status_code == 303, signed_up.text
        assert (await site.user(handle)).handle == handle  # the account exists regardless

        async def retried_while_down() -> dict[str, ProvisioningTaskRead] | None:
            found = await status()
            failing, fine = found.get(down), found.get(up)
            if failing is None or fine is None:
                return None
            if failing.attempts >= 2 and fine.status == "done":
                return found
            return None

        while_down = await wait_for(retried_while_down, what=f"{down} to fail twice")
        failing = while_down[down]
        assert failing.status == "failed-retrying"
        assert failing.last_error is not None
        assert "service is unreachable (ConnectError)" in failing.last_error
        assert failing.next_attempt_at is not None
        assert await count(apps[down], Mailbox if down == "email" else Player) == 0

        site.app.state.clients.mount(down, apps[down])  # the service is back

        async def all_done() -> dict[str, ProvisioningTaskRead] | None:
            found = await status()
            return found if all(entry.status == "done" for entry in found.values()) else None

        final = await wait_for(all_done, what=f"{down} provisioning to succeed")

        inbox = await email.get(
            "/api/messages", params={"user": address}, headers=bearer(mint(address))
        )
        me = await game.get(
            "/api/players/me",
            headers=bearer(
                mint("user-1", audience="veze-game", scopes=("game.play",), email=address)
            ),
        )
        mailboxes = await count(email_app, Mailbox, address=address)
        players = await count(game_app, Player, handle=handle)

    assert sorted(final) == ["email", "game"]
    assert final[down].attempts > failing.attempts  # it took the retry after the outage
    assert final[down].last_error is None and final[down].next_attempt_at is None
    assert final[up].attempts == 1
    assert inbox.status_code == 200, inbox.text
    messages = inbox.json()["messages"]
    assert [message["subject"] for message in messages] == ["Welcome to VEZE UniQVerse"]
    assert str(messages[0]["snippet"]).startswith("Hello Alice A.,")
    assert mailboxes == 1
    assert me.status_code == 200, me.text
    assert (me.json()["handle"], me.json()["display_name"]) == (handle, "Alice A.")
    assert players == 1
