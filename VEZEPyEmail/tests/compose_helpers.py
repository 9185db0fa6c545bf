"""Shared pieces of the sending-over-HTTP tests: users, tokens, an app with a remote MX."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import httpx
from fastapi import FastAPI

from VEZEPyEmail.app.main import create_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.services.mailboxes.service import WELCOME_SUBJECT
from VEZEPyEmail.tests.conftest import provision
from VEZEPyEmail.tests.outbound_helpers import RemoteMx, remote_mx

ALICE = "alice@vezeuniqverse.com"
BOB = "bob@vezeuniqverse.com"
CAROL = "carol@vezeuniqverse.com"
REMOTE = "dave@remote.test"
SEND_SCOPES = ("email.read", "email.send")
Running = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]


@dataclass
class Setup:
    app: FastAPI
    client: httpx.AsyncClient
    mx: RemoteMx
    mint: Callable[..., str]

    def auth(self, address: str, scopes: tuple[str, ...] = SEND_SCOPES) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.mint(address, scopes=scopes)}"}

    async def upload(
        self, owner: str, filename: str, data: bytes, content_type: str = "application/pdf"
    ) -> dict[str, Any]:
        response = await self.client.post(
            "/api/uploads",
            files={"file": (filename, data, content_type)},
            headers=self.auth(owner),
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def folder(self, owner: str, folder: str) -> list[dict[str, Any]]:
        response = await self.client.get(
            "/api/messages", params={"user": owner, "folder": folder}, headers=self.auth(owner)
        )
        assert response.status_code == 200, response.text
        messages: list[dict[str, Any]] = response.json()["messages"]
        # without the welcome mail every new mailbox starts with
        return [item for item in messages if item["subject"] != WELCOME_SUBJECT]

    async def detail(self, owner: str, message_id: int) -> dict[str, Any]:
        response = await self.client.get(f"/api/messages/{message_id}", headers=self.auth(owner))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def raw(self, owner: str, message_id: int) -> EmailMessage:
        response = await self.client.get(
            f"/api/messages/{message_id}/raw", headers=self.auth(owner)
        )
        assert response.status_code == 200, response.text
        parsed = message_from_bytes(response.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@asynccontextmanager
async def compose_setup(
    settings: EmailSettings,
    running: Running,
    admin_headers: dict[str, str],
    mint: Callable[..., str],
    **overrides: Any,
) -> AsyncIterator[Setup]:
    """The Email app with ALICE, BOB and CAROL, and remote.test routed to a local MX."""
    async with remote_mx(RemoteMx()) as mx:
        values: dict[str, Any] = {
            "outbound_mx_overrides": f"remote.test=127.0.0.1:{mx.port}",
            "outbound_backoff_seconds": 0.01,
            "outbound_max_backoff_seconds": 0.05,
            "outbound_poll_seconds": 0.05,
            "outbound_smtp_timeout_seconds": 5.0,
            **overrides,
        }
        app = create_app(settings.model_copy(update=values))
        async with running(app) as client:
            for address in (ALICE, BOB, CAROL):
                await provision(client, admin_headers, address)
            yield Setup(app, client, mx, mint)
