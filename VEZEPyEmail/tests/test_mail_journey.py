"""One mail journey end to end on the real running service and its real SMTP MX listener.

A user's SSE stream is open; mail sent with smtplib arrives live, is listed, is found by
search (body word and `from:`), stays invisible to another user; the user's Sieve rules file
an invoice into Archive flagged, and their vacation rule answers a local sender once only.
"""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import select

from VEZEPyCore.testing import serve_app, sse_events
from VEZEPyEmail.app.main import create_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.db.models import OutboundTask
from VEZEPyEmail.tests.smtp_support import file_local_queued, intake_drained, smtp_settings

DOMAIN = "vezeuniqverse.com"
ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
RULES = (
    'require ["fileinto", "imap4flags", "vacation"];\n'
    'if header :contains "subject" "invoice" { fileinto "Archive"; addflag "\\\\Flagged"; stop; }\n'
    'vacation :days 7 :subject "Out of office" "I am away until Monday.";\n'
)


def smtp_send(port: int, sender: str, recipient: str, subject: str, body: str, tag: str) -> None:
    raw = (
        f"From: {sender}\r\nTo: {recipient}\r\nSubject: {subject}\r\n"
        f"Date: Fri, 27 Nov 2026 08:00:00 +0000\r\nMessage-ID: <{tag}@example.org>\r\n"
        f"\r\n{body}\r\n"
    )
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("client.example.org")
        refused = client.sendmail(sender, [recipient], raw.encode())
    assert refused == {}


async def next_message_event(events: AsyncIterator[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The next message.created event (other event types are skipped), within 10 s."""

    async def wait() -> dict[str, Any]:
        async for name, payload in events:
            if name == "message.created":
                return payload
        raise AssertionError("the event stream ended")

    return await asyncio.wait_for(wait(), 10)


async def test_mail_journey_over_smtp(
    email_settings: EmailSettings, mint: Callable[..., str]
) -> None:
    # No outbound worker: a reply to an outside sender stays queued where the test can see it.
    app = create_app(smtp_settings(email_settings, outbound_worker=False))
    alice = {"Authorization": f"Bearer {mint(ALICE)}"}
    bob = {"Authorization": f"Bearer {mint(BOB)}"}
    admin = {"Authorization": f"Bearer {mint('svc:portal', scopes=('email.admin',))}"}
    async with (
        serve_app(app) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as client,
    ):
        for address in (ALICE, BOB):
            created = await client.post("/api/mailboxes", json={"address": address}, headers=admin)
            assert created.status_code == 201, created.text
        saved = await client.put("/api/rules", json={"script": RULES}, headers=alice)
        assert saved.status_code == 200, saved.text
        mx = app.state.smtp.port("mx")

        async with client.stream(
            "GET", "/api/events", params={"access_token": mint(ALICE)}
        ) as stream:
            events = sse_events(stream)
            assert (await anext(events))[0] == "ready"

            # 1. Plain mail from outside: live event, listed, searchable, private.
            await asyncio.to_thread(
                smtp_send, mx, "carol@example.org", ALICE, "Quarterly numbers",
                "The pineapple figures are in.", "quarterly",
            )  # fmt: skip
            event = await next_message_event(events)
            assert event["subject"] == "Quarterly numbers" and event["folder"] == "INBOX"
            message_id = event["id"]

            listed = await client.get("/api/messages", params={"user": ALICE}, headers=alice)
            [entry] = [m for m in listed.json()["messages"] if m["id"] == message_id]
            assert entry["from_"] == "carol@example.org" and entry["unread"] is True
            for query in ("pineapple", "from:carol@example.org"):
                found = await client.get(
                    "/api/messages", params={"user": ALICE, "q": query}, headers=alice
                )
                assert [m["id"] for m in found.json()["messages"]] == [message_id], query

            assert (await client.get(f"/api/messages/{message_id}", headers=bob)).status_code == 404
            peek = await client.get("/api/messages", params={"user": ALICE}, headers=bob)
            assert peek.status_code == 403
            own = await client.get(
                "/api/messages", params={"user": BOB, "q": "pineapple"}, headers=bob
            )
            assert own.status_code == 200 and own.json()["messages"] == []
            thread = quote(entry["thread_id"])
            assert (await client.get(f"/api/threads/{thread}", headers=bob)).status_code == 404

            # 2. Sieve: the invoice is filed into Archive and flagged (and not answered).
            await asyncio.to_thread(
                smtp_send, mx, "billing@example.org", ALICE, "Your invoice 42",
                "Amount due: 12 EUR.", "invoice",
            )  # fmt: skip
            event = await next_message_event(events)
            assert event["folder"] == "Archive" and event["subject"] == "Your invoice 42"
            archive = await client.get(
                "/api/messages", params={"user": ALICE, "folder": "Archive"}, headers=alice
            )
            [invoice] = archive.json()["messages"]
            assert invoice["id"] == event["id"] and "\\Flagged" in invoice["flags"]

        # 3. Vacation: a local sender is answered once, into their INBOX, and not twice.
        for tag in ("meeting-1", "meeting-2"):
            await asyncio.to_thread(
                smtp_send, mx, BOB, ALICE, "Meeting tomorrow?", "Shall we meet?", tag
            )

        async def subjects(user: str, headers: dict[str, str], subject: str) -> list[Any]:
            listed = await client.get("/api/messages", params={"user": user}, headers=headers)
            return [m for m in listed.json()["messages"] if m["subject"] == subject]

        # Delivered behind the 250 (services/intake); the reply, queued with the filing, is
        # filed by the outbound worker.
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            await file_local_queued(app)
            if len(await subjects(ALICE, alice, "Meeting tomorrow?")) == 2 and (
                await subjects(BOB, bob, "Out of office")
            ):
                break
            assert asyncio.get_running_loop().time() < deadline, "meetings or reply missing"
            await asyncio.sleep(0.05)
        await intake_drained(app.state.sessionmaker, deliverer=app.state.smtp_deliverer)
        assert len(await subjects(ALICE, alice, "Meeting tomorrow?")) == 2
        replies = await subjects(BOB, bob, "Out of office")
        assert len(replies) == 1 and replies[0]["from_"] == ALICE
        reply = (await client.get(f"/api/messages/{replies[0]['id']}", headers=bob)).json()
        headers = {h["name"].lower(): h["value"] for h in reply["headers"]}
        assert headers["auto-submitted"] == "auto-replied"
        assert headers["in-reply-to"] == "<meeting-1@example.org>"
        assert "I am away until Monday." in reply["text"]
        # Outside senders: carol's reply waits in the outbound queue (bob's was filed by it);
        # the invoice got none (its rule stopped before the vacation action).
        async with app.state.engine.connect() as connection:
            queued = (
                await connection.execute(
                    select(OutboundTask.recipients).where(OutboundTask.status == "queued")
                )
            ).scalars()
            assert queued.all() == [["carol@example.org"]]
