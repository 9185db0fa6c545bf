"""Conversations: threading at delivery and GET /api/threads/{thread_id}, own mailbox only."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

import httpx
from fastapi import FastAPI
from sqlalchemy import delete

from VEZEPyEmail.db.models import Message
from VEZEPyEmail.services.delivery.local import deliver_local
from VEZEPyEmail.tests.conftest import provision

ALICE = "alice@vezeuniqverse.com"
BOB = "bob@vezeuniqverse.com"
ROOT = "<root.1@example.org>"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def mail(message_id: str, subject: str, date: str, headers: str = "") -> bytes:
    return (
        f"From: carol@example.org\r\nTo: {ALICE}\r\nSubject: {subject}\r\n"
        f"Date: {date}\r\nMessage-ID: {message_id}\r\n{headers}\r\nText.\r\n"
    ).encode()


async def test_a_conversation_in_date_order_for_its_owner_only(
    email_app: FastAPI,
    email_client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    mint: Callable[..., str],
) -> None:
    await provision(email_client, admin_headers, ALICE)
    await provision(email_client, admin_headers, BOB)
    async with email_app.state.engine.begin() as connection:
        await connection.execute(delete(Message))

    async def deliver(raw: bytes, folder: str = "INBOX", to: str = ALICE) -> int:
        [item] = await deliver_local(
            email_app.state,
            raw=raw,
            envelope_from="carol@example.org",
            recipients=[to],
            folder=folder,
        )
        return int(item.id)

    # Arrival order differs from Date order; the last reply names only its parent (no
    # References), and the parent is not the root: it still joins the root's thread.
    second = await deliver(
        mail(
            "<reply.2@example.org>",
            "Re: Plans",
            "Tue, 03 Mar 2026 10:00:00 +0000",
            f"In-Reply-To: {ROOT}\r\nReferences: {ROOT}\r\n",
        )
    )
    first = await deliver(mail(ROOT, "Plans", "Mon, 02 Mar 2026 10:00:00 +0000"))
    third = await deliver(
        mail(
            "<reply.3@example.org>",
            "Re: Re: Plans",
            "Wed, 04 Mar 2026 10:00:00 +0000",
            "In-Reply-To: <reply.2@example.org>\r\n",
        ),
        folder="Sent",
    )
    other = await deliver(
        mail("<other@example.org>", "Unrelated", "Wed, 04 Mar 2026 11:00:00 +0000")
    )
    await deliver(
        mail(
            "<bob.copy@example.org>",
            "Re: Plans",
            "Thu, 05 Mar 2026 10:00:00 +0000",
            f"References: {ROOT}\r\n",
        ),
        to=BOB,
    )

    alice = bearer(mint(ALICE))
    listed = (await email_client.get("/api/messages", params={"user": ALICE}, headers=alice)).json()
    thread_of = {item["id"]: item.get("thread_id") for item in listed["messages"]}
    assert thread_of[first] == thread_of[second] == ROOT
    assert thread_of[other] == "<other@example.org>"
    detail = (await email_client.get(f"/api/messages/{third}", headers=alice)).json()
    assert detail["thread_id"] == ROOT and detail["folder"] == "Sent"

    response = await email_client.get(f"/api/threads/{quote(ROOT)}", headers=alice)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["thread_id"] == ROOT and body["user"] == ALICE
    assert [item["id"] for item in body["messages"]] == [first, second, third]
    assert [item["folder"] for item in body["messages"]] == ["INBOX", "INBOX", "Sent"]
    summary = body["messages"][0]
    assert summary["subject"] == "Plans" and summary["unread"] is True
    assert {"from_", "date", "snippet", "labels", "flags", "size", "spam_score"} <= set(summary)
    # Without angle brackets works too (they are awkward in URLs).
    bare = await email_client.get(f"/api/threads/{quote(ROOT[1:-1])}", headers=alice)
    assert [item["id"] for item in bare.json()["messages"]] == [first, second, third]

    # Trash is left out unless asked for.
    await email_client.delete(f"/api/messages/{second}", headers=alice)
    kept = (await email_client.get(f"/api/threads/{quote(ROOT)}", headers=alice)).json()
    assert [item["id"] for item in kept["messages"]] == [first, third]
    everything = await email_client.get(
        f"/api/threads/{quote(ROOT)}", params={"include_trash": "true"}, headers=alice
    )
    assert len(everything.json()["messages"]) == 3

    # bob sees only his own copy of the conversation; alice's mailbox is not his to read.
    bob = bearer(mint(BOB))
    his = (await email_client.get(f"/api/threads/{quote(ROOT)}", headers=bob)).json()
    assert [item["subject"] for item in his["messages"]] == ["Re: Plans"]
    assert (
        await email_client.get(f"/api/threads/{quote('<other@example.org>')}", headers=bob)
    ).status_code == 404
    assert (
        await email_client.get(f"/api/threads/{quote(ROOT)}", params={"user": ALICE}, headers=bob)
    ).status_code == 403
    assert (await email_client.get(f"/api/threads/{quote(ROOT)}")).status_code == 401


async def test_a_reply_that_arrived_first_follows_its_parent_into_the_conversation(
    email_app: FastAPI,
    email_client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    mint: Callable[..., str],
) -> None:
    await provision(email_client, admin_headers, ALICE)
    early = mail(
        "<late.child@example.org>",
        "Re: Re: Trip",
        "Tue, 03 Mar 2026 10:00:00 +0000",
        "In-Reply-To: <middle@example.org>\r\n",
    )
    middle = mail(
        "<middle@example.org>",
        "Re: Trip",
        "Mon, 02 Mar 2026 10:00:00 +0000",
        "In-Reply-To: <trip@example.org>\r\nReferences: <trip@example.org>\r\n",
    )
    ids = []
    for raw in (early, middle):
        [item] = await deliver_local(
            email_app.state, raw=raw, envelope_from="c@example.org", recipients=[ALICE]
        )
        ids.append(item.id)
    thread = await email_client.get(
        f"/api/threads/{quote('<trip@example.org>')}", headers=bearer(mint(ALICE))
    )
    assert [item["id"] for item in thread.json()["messages"]] == [ids[1], ids[0]]
