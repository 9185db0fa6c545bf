"""Group commit: concurrent local deliveries share one transaction and stay individually safe."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyEmail.app.main import create_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.db.models import Mailbox, Message
from VEZEPyEmail.services.delivery import local
from VEZEPyEmail.services.delivery.group_commit import GroupCommitter
from VEZEPyEmail.tests.smtp_support import smtp_settings

Running = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]
ERIN = "erin@vezeuniqverse.com"


def _raw(number: int) -> bytes:
    return (
        f"From: frank@sender.example\r\nTo: {ERIN}\r\nSubject: batch {number}\r\n"
        f"Message-ID: <batch-{number}@sender.example>\r\n\r\nbody {number}\r\n"
    ).encode()


@pytest.fixture
async def app(
    email_settings: EmailSettings, running: Running, admin_headers: dict[str, str]
) -> AsyncIterator[FastAPI]:
    app = create_app(email_settings)
    async with running(app) as client:
        response = await client.post(
            "/api/mailboxes", json={"address": ERIN}, headers=admin_headers
        )
        assert response.status_code in (200, 201), response.text
        yield app


@pytest.fixture
async def committer(app: FastAPI) -> AsyncIterator[GroupCommitter]:
    committer = GroupCommitter(app.state)
    committer.start()
    try:
        yield committer
    finally:
        await committer.stop()


async def _subjects(app: FastAPI) -> list[str]:
    """The test messages stored for Erin (a new mailbox also holds a welcome message)."""
    async with app.state.sessionmaker() as session:
        rows = await session.scalars(
            select(Message.subject)
            .join(Mailbox, Mailbox.id == Message.mailbox_id)
            .where(Mailbox.address == ERIN, Message.subject.startswith("batch "))
        )
        return sorted(rows.all())


async def _deliver(committer: GroupCommitter, number: int) -> list[local.DeliveredMessage]:
    return await committer.deliver(
        raw=_raw(number), envelope_from="frank@sender.example", recipients=[ERIN]
    )


async def test_concurrent_deliveries_share_commits_and_all_are_stored(
    app: FastAPI, committer: GroupCommitter
) -> None:
    results = await asyncio.gather(*(_deliver(committer, n) for n in range(30)))
    assert all(len(result) == 1 and not result[0].duplicate for result in results)
    assert committer.filed == 30
    assert committer.batches < 30  # batched: fewer transactions than deliveries
    assert await _subjects(app) == sorted(f"batch {n}" for n in range(30))
    for result in results:  # each blob was fsynced before its row was committed
        assert app.state.blobs.exists(result[0].blob_key)


async def test_a_failing_delivery_fails_alone(
    app: FastAPI, committer: GroupCommitter, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_file = local.file_delivery

    async def failing_for_seven(
        session: AsyncSession, state: Any, prepared: local.PreparedDelivery
    ) -> Any:
        result = await real_file(session, state, prepared)  # rows flushed, then it fails
        if prepared.summary.subject == "batch 7":
            raise RuntimeError("disk on fire")
        return result

    monkeypatch.setattr(local, "file_delivery", failing_for_seven)
    results = await asyncio.gather(
        *(_deliver(committer, n) for n in range(12)), return_exceptions=True
    )
    failed = [n for n, result in enumerate(results) if isinstance(result, BaseException)]
    assert failed == [7]
    # The failed one left nothing behind (its savepoint rolled back); the others are stored.
    assert await _subjects(app) == sorted(f"batch {n}" for n in range(12) if n != 7)


async def test_a_failed_commit_fails_its_whole_batch(
    app: FastAPI, committer: GroupCommitter, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_commit(self: AsyncSession) -> None:
        raise RuntimeError("commit failed")

    monkeypatch.setattr(AsyncSession, "commit", broken_commit)
    results = await asyncio.gather(
        *(_deliver(committer, n) for n in range(8)), return_exceptions=True
    )
    # Nobody is told "stored" for a batch that was not committed.
    assert all(isinstance(result, RuntimeError) for result in results)
    monkeypatch.undo()
    assert await _subjects(app) == []
    # The committer keeps working after a failed batch.
    assert len(await _deliver(committer, 99)) == 1
    assert await _subjects(app) == ["batch 99"]


async def test_the_mx_listener_delivers_through_the_group_committer(
    email_settings: EmailSettings, running: Running, admin_headers: dict[str, str]
) -> None:
    app = create_app(smtp_settings(email_settings))
    async with running(app) as client:
        response = await client.post(
            "/api/mailboxes", json={"address": ERIN}, headers=admin_headers
        )
        assert response.status_code in (200, 201), response.text
        committer = app.state.group_commit
        assert isinstance(committer, GroupCommitter)
        port = app.state.smtp.port("mx")

        def send(number: int) -> None:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
                smtp.sendmail("frank@sender.example", [ERIN], _raw(number))

        def send_all() -> None:
            # Own threads: the loop's default executor stays free for the server's work.
            with ThreadPoolExecutor(max_workers=6) as pool:
                list(pool.map(send, range(6)))

        await asyncio.to_thread(send_all)
        assert committer.filed == 6
        assert await _subjects(app) == sorted(f"batch {n}" for n in range(6))
