"""A send is one durable unit, and `Idempotency-Key` makes it safe to retry.

Failures are injected at a real point: a database trigger that refuses the outbound queue row,
which the send writes after the local copies and the Sent copy and before the draft purge.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text, update

from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.db.models import Message, OutboundTask, SendIdempotency
from VEZEPyEmail.services.compose import idempotency
from VEZEPyEmail.tests.compose_helpers import ALICE, BOB, REMOTE, Running, Setup, compose_setup
from VEZEPyEmail.tests.outbound_helpers import eventually


@pytest.fixture
async def setup(
    email_settings: EmailSettings,
    running: Running,
    admin_headers: dict[str, str],
    mint: Callable[..., str],
) -> AsyncIterator[Setup]:
    async with compose_setup(email_settings, running, admin_headers, mint) as made:
        yield made


def keyed(setup: Setup, sender: str, key: str) -> dict[str, str]:
    return {**setup.auth(sender), "Idempotency-Key": key}


async def outbound_rows(setup: Setup) -> int:
    async with setup.app.state.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(OutboundTask)) or 0)


async def rows_in(setup: Setup, folder: str) -> int:
    async with setup.app.state.sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(Message).where(Message.folder == folder)
        )
    return int(count or 0)


BODY = {"to": [BOB], "cc": [REMOTE], "subject": "Once only", "text": "Exactly once.\n"}


async def test_a_retried_send_with_the_same_key_delivers_once(setup: Setup) -> None:
    first = await setup.client.post("/api/send", json=BODY, headers=keyed(setup, ALICE, "k-1"))
    assert first.status_code == 202, first.text
    assert "Idempotent-Replayed" not in first.headers
    retry = await setup.client.post("/api/send", json=BODY, headers=keyed(setup, ALICE, "k-1"))
    assert retry.status_code == 202, retry.text
    assert retry.json() == first.json()
    assert retry.headers["Idempotent-Replayed"] == "true"

    assert len(await setup.folder(BOB, "INBOX")) == 1
    assert [m["id"] for m in await setup.folder(ALICE, "Sent")] == [first.json()["id"]]
    assert await outbound_rows(setup) == 1
    received = await eventually(lambda: _received(setup))
    assert received.rcpt_tos == [REMOTE]

    # The key is the caller's own: Bob may use the same string for his own send.
    bobs = await setup.client.post(
        "/api/send", json={**BODY, "to": [ALICE]}, headers=keyed(setup, BOB, "k-1")
    )
    assert bobs.status_code == 202 and bobs.json()["message_id"] != first.json()["message_id"]
    assert "Idempotent-Replayed" not in bobs.headers


async def _received(setup: Setup) -> Any:
    return setup.mx.received[0] if setup.mx.received else None


async def test_the_same_key_with_another_request_is_refused(setup: Setup) -> None:
    first = await setup.client.post("/api/send", json=BODY, headers=keyed(setup, ALICE, "k-2"))
    assert first.status_code == 202, first.text
    other = await setup.client.post(
        "/api/send", json={**BODY, "subject": "Changed"}, headers=keyed(setup, ALICE, "k-2")
    )
    assert other.status_code == 422, other.text
    assert other.json()["error"] == "idempotency_key_reused"
    assert len(await setup.folder(BOB, "INBOX")) == 1

    bad = await setup.client.post("/api/send", json=BODY, headers=keyed(setup, ALICE, "a b"))
    assert bad.status_code == 400 and "Idempotency-Key" in bad.json()["detail"]


async def test_concurrent_sends_with_one_key_send_once(setup: Setup) -> None:
    body = {"to": [BOB], "subject": "Raced", "text": "twice at once\n"}
    responses = await asyncio.gather(
        *(
            setup.client.post("/api/send", json=body, headers=keyed(setup, ALICE, "k-race"))
            for _ in range(3)
        )
    )
    assert [r.status_code for r in responses] == [202] * 3, [r.text for r in responses]
    assert len({r.json()["message_id"] for r in responses}) == 1
    assert sorted(r.headers.get("Idempotent-Replayed", "") for r in responses) == [
        "",
        "true",
        "true",
    ]
    assert len(await setup.folder(BOB, "INBOX")) == 1
    assert len(await setup.folder(ALICE, "Sent")) == 1


async def test_a_draft_sent_twice_at_once_is_sent_once(setup: Setup) -> None:
    created = await setup.client.post(
        "/api/drafts", json={"to": [BOB], "subject": "Draft race"}, headers=setup.auth(ALICE)
    )
    draft_id = created.json()["id"]
    responses = await asyncio.gather(
        *(
            setup.client.post(f"/api/drafts/{draft_id}/send", headers=setup.auth(ALICE))
            for _ in range(2)
        )
    )
    assert sorted(r.status_code for r in responses) == [202, 404], [r.text for r in responses]
    assert len(await setup.folder(BOB, "INBOX")) == 1
    assert len(await setup.folder(ALICE, "Sent")) == 1

    # With a key, the retry of a draft send gets the first result, not "no such draft".
    created = await setup.client.post(
        "/api/drafts", json={"to": [BOB], "subject": "Draft retry"}, headers=setup.auth(ALICE)
    )
    draft_id = created.json()["id"]
    url = f"/api/drafts/{draft_id}/send"
    first = await setup.client.post(url, headers=keyed(setup, ALICE, "d-1"))
    retry = await setup.client.post(url, headers=keyed(setup, ALICE, "d-1"))
    assert first.status_code == retry.status_code == 202, retry.text
    assert retry.json() == first.json() and retry.headers["Idempotent-Replayed"] == "true"
    assert len(await setup.folder(BOB, "INBOX")) == 2


async def _inject_failure(setup: Setup) -> None:
    """A trigger that refuses every new outbound queue row (a real database failure)."""
    async with setup.app.state.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            await connection.execute(
                text(
                    "CREATE TRIGGER inject_failure BEFORE INSERT ON outbound_queue "
                    "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
                )
            )
        else:
            await connection.execute(
                text(
                    "CREATE FUNCTION inject_failure() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql"
                )
            )
            await connection.execute(
                text(
                    "CREATE TRIGGER inject_failure BEFORE INSERT ON outbound_queue "
                    "FOR EACH ROW EXECUTE FUNCTION inject_failure()"
                )
            )


async def _remove_failure(setup: Setup) -> None:
    async with setup.app.state.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            await connection.execute(text("DROP TRIGGER inject_failure"))
        else:
            await connection.execute(text("DROP TRIGGER inject_failure ON outbound_queue"))
            await connection.execute(text("DROP FUNCTION inject_failure()"))


async def test_a_failure_midway_leaves_nothing_and_the_retry_sends_once(setup: Setup) -> None:
    # A reply, from a draft, to a local and a remote recipient: every step of a send.
    await setup.client.post(
        "/api/send", json={"to": [ALICE], "text": "hi"}, headers=setup.auth(BOB)
    )
    (original,) = await setup.folder(ALICE, "INBOX")
    created = await setup.client.post(
        "/api/drafts",
        json={"to": [BOB], "cc": [REMOTE], "subject": "Re: hi", "in_reply_to": original["id"]},
        headers=setup.auth(ALICE),
    )
    draft_id = created.json()["id"]
    before_inbox = len(await setup.folder(BOB, "INBOX"))
    await _inject_failure(setup)
    transport = httpx.ASGITransport(app=setup.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        failed = await client.post(
            f"/api/drafts/{draft_id}/send", headers=keyed(setup, ALICE, "f-1")
        )
    assert failed.status_code == 500

    # Nothing of the send happened: no copies, no Sent, the draft and the original unchanged.
    assert len(await setup.folder(BOB, "INBOX")) == before_inbox
    assert await rows_in(setup, "Sent") == 1  # Bob's first message only
    assert [d["id"] for d in await setup.folder(ALICE, "Drafts")] == [draft_id]
    (still,) = await setup.folder(ALICE, "INBOX")
    assert "\\Answered" not in still["flags"]
    assert await outbound_rows(setup) == 0
    async with setup.app.state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(SendIdempotency)) == 0

    # The key was not used up: the retry sends, once.
    await _remove_failure(setup)
    sent = await setup.client.post(
        f"/api/drafts/{draft_id}/send", headers=keyed(setup, ALICE, "f-1")
    )
    assert sent.status_code == 202, sent.text
    assert "Idempotent-Replayed" not in sent.headers
    assert len(await setup.folder(BOB, "INBOX")) == before_inbox + 1
    assert await setup.folder(ALICE, "Drafts") == []
    (answered,) = await setup.folder(ALICE, "INBOX")
    assert "\\Answered" in answered["flags"]
    assert await outbound_rows(setup) == 1


async def test_a_key_expires_after_its_lifetime(setup: Setup) -> None:
    first = await setup.client.post("/api/send", json=BODY, headers=keyed(setup, ALICE, "k-old"))
    assert first.status_code == 202, first.text
    # A day later (moved back in time here): the record no longer answers, and is swept.
    async with setup.app.state.sessionmaker.begin() as session:
        await session.execute(
            update(SendIdempotency).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    again = await setup.client.post("/api/send", json=BODY, headers=keyed(setup, ALICE, "k-old"))
    assert again.status_code == 202 and "Idempotent-Replayed" not in again.headers
    assert again.json()["message_id"] != first.json()["message_id"]
    assert len(await setup.folder(BOB, "INBOX")) == 2
    async with setup.app.state.sessionmaker.begin() as session:  # the new record, live
        await session.execute(
            update(SendIdempotency).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert await idempotency.sweep(setup.app.state.sessionmaker) == 1
