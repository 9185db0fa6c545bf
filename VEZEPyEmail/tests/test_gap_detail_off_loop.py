"""A large message is parsed off the event loop: other requests are served meanwhile.

The parse of the large message is held (a gate around the real parser) until a cheap request
has been answered. Parsed on the loop, the hold would stall the loop and the cheap request
could not finish; parsed in a worker thread, it finishes first. No timing is asserted, only
the order, with bounded waits.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from email.message import EmailMessage

import httpx
import pytest
from fastapi import FastAPI

from VEZEPyEmail.services.delivery.local import deliver_local
from VEZEPyEmail.services.messages import detail, mime
from VEZEPyEmail.tests.conftest import provision

ALICE = "alice@vezeuniqverse.com"
#: How long the gate holds the large parse at most (a bound, reached only when it fails).
HOLD_SECONDS = 15.0
ATTACHMENT = os.urandom(2 * 1024 * 1024)


@dataclass
class Mailbox:
    client: httpx.AsyncClient
    headers: dict[str, str]
    large: int
    small: int


def _message(subject: str, attachment: bytes | None) -> bytes:
    message = EmailMessage()
    message["From"] = "sender@example.org"
    message["To"] = ALICE
    message["Subject"] = subject
    message.set_content("Hello Alice,\nsee the attachment.\n")
    if attachment is not None:
        message.add_attachment(
            attachment, maintype="application", subtype="pdf", filename="large.pdf"
        )
    return message.as_bytes()


@pytest.fixture
async def mailbox(
    email_app: FastAPI,
    admin_headers: dict[str, str],
    running: Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]],
    mint: Callable[..., str],
) -> AsyncIterator[Mailbox]:
    async with running(email_app) as client:
        await provision(client, admin_headers, ALICE)
        ids = []
        for subject, attachment in (("large", ATTACHMENT), ("small", None)):
            (delivered,) = await deliver_local(
                email_app.state,
                raw=_message(subject, attachment),
                envelope_from="sender@example.org",
                recipients=[ALICE],
            )
            ids.append(delivered.id)
        headers = {"Authorization": f"Bearer {mint(ALICE)}"}
        yield Mailbox(client, headers, large=ids[0], small=ids[1])


class ParseGate:
    """Wraps the real parser: a parse of a large message waits until `release()`."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.released = threading.Event()
        self.held_until_released = False
        self.real = mime.parse_bytes

    def __call__(self, raw: bytes) -> EmailMessage:
        if len(raw) > detail.INLINE_PARSE_BYTES and not self.started.is_set():
            self.started.set()
            self.held_until_released = self.released.wait(HOLD_SECONDS)
        return self.real(raw)

    def release(self) -> None:
        self.released.set()


@pytest.mark.parametrize(
    "path", ["/api/messages/{id}", "/api/messages/{id}/attachments/0", "/api/messages/{id}/forward"]
)
async def test_a_cheap_request_is_served_while_a_large_message_is_parsed(
    mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    gate = ParseGate()
    monkeypatch.setattr(mime, "parse_bytes", gate)
    client, headers = mailbox.client, mailbox.headers

    large = asyncio.create_task(client.get(path.format(id=mailbox.large), headers=headers))
    assert await asyncio.to_thread(gate.started.wait, HOLD_SECONDS + 5)
    # The large parse is held now. A small message's detail (parsed inline) and the list:
    small = await asyncio.wait_for(
        client.get(f"/api/messages/{mailbox.small}", headers=headers), HOLD_SECONDS
    )
    listing = await asyncio.wait_for(
        client.get("/api/messages", params={"user": ALICE}, headers=headers), HOLD_SECONDS
    )
    finished_first = not large.done()
    gate.release()
    response = await asyncio.wait_for(large, HOLD_SECONDS + 30)

    assert small.status_code == 200 and small.json()["subject"] == "small"
    assert listing.status_code == 200 and len(listing.json()["messages"]) >= 2
    assert gate.held_until_released, "the loop stalled while the large message was parsed"
    assert finished_first
    # And the large request itself is answered in full.
    assert response.status_code == 200, response.text
    if path.endswith("/0"):
        assert response.content == ATTACHMENT
    elif path.endswith("/forward"):
        assert response.json()["attachments"][0]["size"] == len(ATTACHMENT)
    else:
        body = response.json()
        assert body["subject"] == "large"
        assert body["attachments"][0]["size"] == len(ATTACHMENT)
