"""Group commit: concurrent local deliveries share one transaction and stay individually safe."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyCore.db.engine import begin_as_writer
from VEZEPyCore.testing import eventually
from VEZEPyEmail.app.main import create_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.db.models import Mailbox, Message
from VEZEPyEmail.db.sieve import SieveScript
from VEZEPyEmail.services.delivery import batch_filing, group_commit, local
from VEZEPyEmail.services.delivery.batch_filing import BatchFiling, BatchPlan
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
    # Every delivery takes the one-by-one path (the set-based path is tested below).
    monkeypatch.setattr(group_commit, "file_plain_deliveries", _nothing_filed_set_based)
    results = await asyncio.gather(
        *(_deliver(committer, n) for n in range(12)), return_exceptions=True
    )
    failed = [n for n, result in enumerate(results) if isinstance(result, BaseException)]
    assert failed == [7]
    # The failed one left nothing behind (its savepoint rolled back); the others are stored.
    assert await _subjects(app) == sorted(f"batch {n}" for n in range(12) if n != 7)


async def _nothing_filed_set_based(session: AsyncSession, plan: BatchPlan) -> BatchFiling:
    return BatchFiling(remaining=list(range(len(plan.batch))))


async def _rows(app: FastAPI) -> list[dict[str, Any]]:
    """Erin's test messages as stored, without what differs between two deliveries."""
    async with app.state.sessionmaker() as session:
        found = await session.scalars(
            select(Message)
            .join(Mailbox, Mailbox.id == Message.mailbox_id)
            .where(Mailbox.address == ERIN, Message.subject.startswith("batch "))
            .order_by(Message.subject)
        )
        return [
            {
                column.key: getattr(row, column.key)
                for column in Message.__table__.columns
                # The test messages have no Date: both take the time of delivery.
                if column.key not in ("id", "received_at", "date")
            }
            for row in found.all()
        ]


async def test_set_based_and_one_by_one_filing_store_the_same_rows(
    app: FastAPI, committer: GroupCommitter, monkeypatch: pytest.MonkeyPatch
) -> None:
    await asyncio.gather(*(_deliver(committer, n) for n in range(6)))
    set_based = await _rows(app)
    assert committer.filed == 6 and len(set_based) == 6
    async with app.state.sessionmaker() as session:
        await session.execute(delete(Message).where(Message.subject.startswith("batch ")))
        await session.commit()
    monkeypatch.setattr(group_commit, "file_plain_deliveries", _nothing_filed_set_based)
    await asyncio.gather(*(_deliver(committer, n) for n in range(6)))
    assert await _rows(app) == set_based


async def test_the_same_message_id_is_stored_once_within_a_batch_and_across_batches(
    app: FastAPI, committer: GroupCommitter
) -> None:
    first = await _deliver(committer, 1)
    results = await asyncio.gather(*(_deliver(committer, n % 2) for n in range(10)))
    zeros = [result[0] for n, result in enumerate(results) if n % 2 == 0]
    ones = [result[0] for n, result in enumerate(results) if n % 2 == 1]
    assert all(copy.duplicate and copy.id == first[0].id for copy in ones)
    assert len({copy.id for copy in zeros}) == 1  # one row; the others point at it
    assert sum(not copy.duplicate for copy in zeros) == 1
    assert await _subjects(app) == ["batch 0", "batch 1"]


async def test_a_failing_set_based_step_falls_back_to_one_by_one_filing(
    app: FastAPI, committer: GroupCommitter, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_insert(*_: Any, **__: Any) -> Any:
        raise RuntimeError("insert failed")

    monkeypatch.setattr(batch_filing, "insert", broken_insert)
    results = await asyncio.gather(*(_deliver(committer, n) for n in range(8)))
    assert all(len(result) == 1 and not result[0].duplicate for result in results)
    assert await _subjects(app) == sorted(f"batch {n}" for n in range(8))


async def test_a_message_id_stored_after_the_plan_was_read_is_not_stored_twice(
    app: FastAPI,
) -> None:
    # The plan is read before the write lock; another process may store the same message
    # in between. The unique index refuses the set-based insert and nothing of it stays.
    prepared = await local.prepare_delivery(
        app.state, raw=_raw(5), envelope_from="frank@sender.example", recipients=[ERIN]
    )
    assert prepared is not None
    plan = await batch_filing.plan_plain_deliveries(app.state.sessionmaker, [prepared])
    assert plan.values  # one new row planned
    stored = await local.deliver_local(
        app.state, raw=_raw(5), envelope_from="frank@sender.example", recipients=[ERIN]
    )
    async with app.state.sessionmaker() as session:
        await begin_as_writer(session)
        outcome = await batch_filing.file_plain_deliveries(session, plan)
        await session.commit()
    assert outcome.filed == {} and outcome.remaining == [0]
    assert await _subjects(app) == ["batch 5"] and len(stored) == 1


async def test_rules_and_replies_are_filed_one_by_one_and_keep_their_meaning(
    app: FastAPI, committer: GroupCommitter
) -> None:
    async with app.state.sessionmaker() as session:
        mailbox_id = await session.scalar(select(Mailbox.id).where(Mailbox.address == ERIN))
        now = datetime.now(UTC)
        session.add(
            SieveScript(
                mailbox_id=mailbox_id,
                script='require "fileinto";\nif header :contains "subject" "batch 3" '
                '{ fileinto "Lists"; }\n',
                created_at=now,
                updated_at=now,
            )
        )
        await session.commit()
    reply = (
        f"From: frank@sender.example\r\nTo: {ERIN}\r\nSubject: batch reply\r\n"
        "Message-ID: <batch-reply@sender.example>\r\n"
        "In-Reply-To: <batch-2@sender.example>\r\n\r\nreply\r\n"
    ).encode()
    await _deliver(committer, 2)
    await asyncio.gather(
        *(_deliver(committer, n) for n in (3, 4)),
        committer.deliver(raw=reply, envelope_from="frank@sender.example", recipients=[ERIN]),
    )
    rows = {row["subject"]: row for row in await _rows(app)}
    assert rows["batch 3"]["folder"] == "Lists"  # the rules ran
    assert rows["batch 4"]["folder"] == "INBOX"
    assert rows["batch reply"]["thread_id"] == "<batch-2@sender.example>"


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
        # Accepted first, then filed from the intake by the committer, in few transactions.
        await eventually(lambda: committer.filed == 6, what="six filed deliveries")
        assert await _subjects(app) == sorted(f"batch {n}" for n in range(6))
