"""The copilot acting for a person over a real WebSocket, against real Email and Game.

Each documented command once, the confirm step before anything is sent or changed, an
unknown request, and two people whose copilots only ever see their own data.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from sqlalchemy import select
from websockets.asyncio.client import ClientConnection, connect

from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyGame.app.settings import GameSettings
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.db.models import User
from VEZEPyUniQVerse.tests.helpers import Minter
from VEZEPyUniQVerse.tests.hub_support import DOMAIN, Person, Platform, platform, sign_up

WELCOME_SUBJECT = "Welcome to VEZE UniQVerse"


class Chat:
    def __init__(self, websocket: ClientConnection) -> None:
        self.websocket = websocket

    async def ask(self, text: str) -> dict[str, Any]:
        await self.websocket.send(json.dumps({"text": text}))
        reply: dict[str, Any] = json.loads(await self.websocket.recv())
        return reply


@asynccontextmanager
async def chat(plat: Platform, token: str) -> AsyncIterator[Chat]:
    async with connect(f"{plat.ws}/ws/copilot?access_token={token}") as websocket:
        greeting = json.loads(await websocket.recv())
        assert greeting["type"] == "greeting"
        yield Chat(websocket)


async def copilot_of(plat: Platform, person: Person, stack: AsyncExitStack) -> Chat:
    return await stack.enter_async_context(chat(plat, await person.copilot_token()))


async def test_every_command_with_confirmation_and_isolation(
    portal_settings: PortalSettings,
    email_settings: EmailSettings,
    game_settings: GameSettings,
    mint: Minter,
) -> None:
    async with (
        platform(portal_settings, email_settings, game_settings) as plat,
        AsyncExitStack() as stack,
    ):
        ann = await sign_up(stack, plat, "ann")
        ben = await sign_up(stack, plat, "ben")
        a = await copilot_of(plat, ann, stack)
        b = await copilot_of(plat, ben, stack)

        help_reply = await a.ask("help")
        unread = await a.ask("unread mail")

        # Sending is proposed first: nothing reaches Ben before Ann says yes.
        proposal = await a.ask(f"send mail to {ben.handle} subject Lunch plan: See you at noon!")
        before_yes = await b.ask("unread mail")
        sent = await a.ask("yes")
        after_yes = await b.ask("unread mail")
        found_by_ben = await b.ask(f"search mail from {ann.handle}")
        # Ann's copilot searches Ann's mailbox only: Ben's new message is not hers to see.
        found_by_ann = await a.ask("search mail lunch")

        # "no" drops the proposal, and a later "yes" has nothing to confirm.
        second = await a.ask(f"send mail to {ben.handle} subject Again: twice")
        declined = await a.ask("no")
        stale_yes = await a.ask("yes")
        still = await b.ask("unread mail")

        queue_proposal = await a.ask("queue ranked")
        queued = await a.ask("yes")
        status = await a.ask("queue status")
        ben_status = await b.ask("queue status")
        leave_proposal = await a.ask("leave queue")
        left = await a.ask("yes")

        rank = await a.ask("my rank")
        top = await a.ask("top 10")
        unknown = await a.ask("make me a sandwich")

        stranger_token = mint(
            f"nobody@{DOMAIN}", audience="veze-portal", scopes=(), issuer=plat.portal
        )
        async with chat(plat, stranger_token) as stranger:
            refused = await stranger.ask("unread mail")
        # A token for Ann's account that claims Ben's address still acts as Ann: the account
        # comes from the verified subject, the address from the account.
        async with plat.portal_app.state.sessionmaker() as db:
            ann_id = await db.scalar(select(User.id).where(User.handle == ann.handle))
        mixed = mint(
            str(ann_id), audience="veze-portal", scopes=(), issuer=plat.portal, email=ben.address
        )
        async with chat(plat, mixed) as confused:
            as_ann = await confused.ask("unread mail")

    assert help_reply["command"] == "help"
    for command in ("unread mail", "search mail <words>", "my rank", "top <n>"):
        assert command in help_reply["text"]

    assert unread["command"] == "unread mail"
    assert unread["text"].startswith("You have 1 unread message.")
    assert WELCOME_SUBJECT in unread["text"]
    assert unread["links"] == [{"label": "Open webmail", "url": f"{plat.email}/ui/inbox"}]

    assert proposal["type"] == "confirm" and proposal["pending"] == "send mail"
    assert f"{ben.handle}" in proposal["text"] and "'Lunch plan'" in proposal["text"]
    assert before_yes["text"].startswith("You have 1 unread message.")
    assert sent["type"] == "reply" and sent["text"].startswith(
        f"Sent: your message to {ben.address}"
    )
    assert after_yes["text"].startswith("You have 2 unread messages.")
    assert "Lunch plan" in after_yes["text"]
    assert "Lunch plan" in found_by_ben["text"] and ann.address in found_by_ben["text"]
    assert found_by_ann["text"] == "No mail matches 'lunch'."

    assert second["type"] == "confirm"
    assert declined["text"] == "Cancelled; nothing was done."
    assert stale_yes["text"] == "There is nothing waiting for a yes."
    assert still["text"].startswith("You have 2 unread messages.")

    assert queue_proposal["type"] == "confirm" and queue_proposal["pending"] == "queue"
    assert queued["command"] == "queue" and "ranked queue" in queued["text"]
    assert status["command"] == "queue status"
    assert "ranked" in status["text"] and "not in a queue" not in status["text"]
    assert ben_status["text"].startswith("You are not in a queue.")  # Ann's ticket is hers
    assert leave_proposal["type"] == "confirm"
    assert left["type"] in ("reply", "error")
    if left["type"] == "reply":  # the matchmaker may pair her with a bot first
        assert left["text"] == "You left the queue."

    assert rank["command"] == "my rank"
    assert "Ranked:" in rank["text"] and "Casual:" in rank["text"]
    assert rank["links"][0]["url"] == f"{plat.game}/ui/profile"
    assert top["command"] == "top"
    assert top["links"][0]["url"] == f"{plat.game}/ui/leaderboard"

    assert unknown["type"] == "reply" and "command" not in unknown
    assert unknown["text"].startswith("I don't understand 'make me a sandwich'")

    assert as_ann["text"].startswith("You have 1 unread message.")
    assert "Lunch plan" not in as_ann["text"]

    assert refused["type"] == "error"
    assert "portal account" in refused["text"]
