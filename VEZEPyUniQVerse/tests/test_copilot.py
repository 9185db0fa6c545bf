from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError

from VEZEPyCore.testing import serve_app
from VEZEPyEmail.app.main import create_app as create_email_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyUniQVerse.app.main import create_app
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.services.copilot.service import COMMANDS, MAX_MESSAGE_CHARS
from VEZEPyUniQVerse.tests.helpers import Minter, dead_url, with_changes

ALICE = "alice@vezeuniqverse.com"


@asynccontextmanager
async def serve_portal(settings: PortalSettings) -> AsyncIterator[str]:
    """The portal on a real port; yields its ws:// base URL."""
    async with serve_app(create_app(settings)) as url:
        yield url.replace("http://", "ws://", 1)


async def ask(websocket: ClientConnection, text: str) -> dict[str, Any]:
    await websocket.send(json.dumps({"text": text}))
    return await receive(websocket)


async def receive(websocket: ClientConnection) -> dict[str, Any]:
    reply: dict[str, Any] = json.loads(await websocket.recv())
    return reply


async def test_copilot_greets_helps_and_lists_live_services(
    portal_settings: PortalSettings, email_settings: EmailSettings, mint: Minter
) -> None:
    token = mint(ALICE, audience="veze-portal", scopes=())
    async with serve_app(create_email_app(email_settings)) as email_url:
        settings = with_changes(
            portal_settings, service_urls={"email": email_url, "game": dead_url()}
        )
        async with (
            serve_portal(settings) as base,
            connect(f"{base}/ws/copilot?access_token={token}") as websocket,
        ):
            greeting = await receive(websocket)
            help_reply = await ask(websocket, "  HELP ")
            services = await ask(websocket, "services")
            unknown = await ask(websocket, "make me a sandwich")

    assert greeting["type"] == "greeting"
    assert ALICE in greeting["text"]
    assert "help" in greeting["text"]

    assert (help_reply["type"], help_reply["command"]) == ("reply", "help")
    assert help_reply["commands"] == list(COMMANDS)
    assert {"help", "services", "unread mail", "my rank", "top <n>"} <= set(COMMANDS)
    assert "services:" in help_reply["text"]

    assert (services["type"], services["command"]) == ("reply", "services")
    statuses = {entry["name"]: entry["status"] for entry in services["services"]}
    assert statuses == {"portal": "up", "email": "up", "game": "down"}
    assert "Mail is up" in services["text"]
    assert "Game is down" in services["text"]

    assert unknown["type"] == "reply"
    assert unknown["text"].startswith("I don't understand 'make me a sandwich'")
    assert "command" not in unknown


async def test_copilot_answers_bad_messages_with_errors_and_keeps_talking(
    portal_settings: PortalSettings, mint: Minter
) -> None:
    token = mint(ALICE, audience="veze-portal", scopes=())
    async with (
        serve_portal(portal_settings) as base,
        connect(f"{base}/ws/copilot?access_token={token}") as websocket,
    ):
        await receive(websocket)
        too_long = await ask(websocket, "x" * (MAX_MESSAGE_CHARS + 1))
        await websocket.send("not json")
        malformed = await receive(websocket)
        await websocket.send(json.dumps({"text": 42}))
        wrong_type = await receive(websocket)
        await websocket.send(b"\x00binary")
        binary = await receive(websocket)
        still_there = await ask(websocket, "help")

    assert too_long == {
        "type": "error",
        "text": f"Messages are limited to {MAX_MESSAGE_CHARS} characters.",
    }
    assert malformed["type"] == wrong_type["type"] == binary["type"] == "error"
    assert '{"text": "help"}' in malformed["text"]
    assert still_there["command"] == "help"


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("", "missing bearer token"),
        ("?access_token=not-a-jwt", "malformed token"),
        ("?access_token={wrong_audience}", "token rejected"),
        ("?access_token={expired}", "token expired"),
    ],
)
async def test_copilot_refuses_without_a_valid_portal_token(
    portal_settings: PortalSettings, mint: Minter, query: str, reason: str
) -> None:
    tokens = {
        "wrong_audience": mint(ALICE, audience="veze-email"),
        "expired": mint(ALICE, audience="veze-portal", ttl_seconds=-120),
    }
    async with (
        serve_portal(portal_settings) as base,
        connect(f"{base}/ws/copilot{query.format(**tokens)}") as websocket,
    ):
        with pytest.raises(ConnectionClosedError) as closed:
            await websocket.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    assert reason in closed.value.rcvd.reason
