"""The MX intake (services/intake, ADR 0023): recorded before the 250, delivered once after it."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from VEZEPyCore.testing import eventually
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.db import intake as intake_db
from VEZEPyEmail.db.models import IntakeMessage, Mailbox, Message
from VEZEPyEmail.services.intake import deliverer as deliverer_module
from VEZEPyEmail.services.intake.delivery import deliver_accepted
from VEZEPyEmail.tests.smtp_support import (
    DOMAIN,
    SmtpRig,
    in_thread,
    intake_drained,
    message,
    smtp_rig,
    smtp_settings,
)

ALICE = f"alice@{DOMAIN}"
Running = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
async def rig(
    email_settings: EmailSettings, running: Running, admin_headers: dict[str, str]
) -> AsyncIterator[SmtpRig]:
    async with smtp_rig(smtp_settings(email_settings), running, admin_headers) as rig:
        yield rig


def _send(port: int, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail("carol@example.org", [ALICE], raw)


async def _count(rig: SmtpRig, model: type[IntakeMessage] | type[Message]) -> int:
    async with rig.app.state.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _alice_messages(rig: SmtpRig, subject: str) -> int:
    async with rig.app.state.sessionmaker() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(Message)
            .join(Mailbox, Mailbox.id == Message.mailbox_id)
            .where(Mailbox.address == ALICE, Message.subject == subject)
        )
    return int(count or 0)


async def test_the_250_follows_a_committed_record_and_delivery_follows_it(rig: SmtpRig) -> None:
    deliverer = rig.app.state.smtp_deliverer
    await deliverer.stop()  # nothing delivers: what the 250 promises must already be stored
    raw = message(subject="Recorded first")
    await in_thread(_send, rig.mx_port, raw)
    async with rig.app.state.sessionmaker() as session:
        [row] = (await session.scalars(select(IntakeMessage))).all()
    assert row.raw == raw and row.recipients == [ALICE] and row.envelope_from == "carol@example.org"
    assert row.received.startswith("from ") and row.peer_ip == "127.0.0.1"
    assert await _alice_messages(rig, "Recorded first") == 0

    deliverer.start()  # as after a restart: what is waiting is delivered at once
    [stored] = await rig.stored(ALICE)
    assert stored.endswith(raw) and b"Received: from " in stored
    assert await _count(rig, IntakeMessage) == 0
    async with rig.app.state.sessionmaker() as session:
        received_at = await session.scalar(select(Message.received_at).order_by(Message.id.desc()))
    # The arrival time is when the MX took it, not when it was filed.
    assert (
        received_at is not None
        and abs(
            (received_at.replace(tzinfo=UTC) - row.accepted_at.replace(tzinfo=UTC)).total_seconds()
        )
        < 1e-3
    )


async def test_a_message_whose_lease_ran_out_is_filed_once_by_whichever_deliverer_ends_it(
    rig: SmtpRig,
) -> None:
    deliverer = rig.app.state.smtp_deliverer
    await deliverer.stop()
    await in_thread(_send, rig.mx_port, message(subject="Two deliverers"))
    sessionmaker = rig.app.state.sessionmaker
    async with sessionmaker() as session:
        [first] = await intake_db.claim(session, limit=10, lease_seconds=60, max_attempts=5)
        await session.commit()
    async with sessionmaker() as session:  # nobody else gets it while the lease holds
        assert await intake_db.claim(session, limit=10, lease_seconds=60, max_attempts=5) == []
        await session.execute(
            update(IntakeMessage).values(leased_until=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    async with sessionmaker() as session:  # the lease ran out: a second deliverer takes it
        [second] = await intake_db.claim(session, limit=10, lease_seconds=60, max_attempts=5)
        await session.commit()
    assert first.id == second.id and second.attempts == 2

    committer = rig.app.state.group_commit
    assert await deliver_accepted(rig.app.state, committer, [second]) == [True]
    # The first deliverer wakes up late: its row is gone, so it files nothing.
    assert await deliver_accepted(rig.app.state, committer, [first]) == [False]
    assert await _alice_messages(rig, "Two deliverers") == 1
    assert await _count(rig, IntakeMessage) == 0


async def test_a_deliverer_stopped_mid_batch_gives_its_leases_back(
    rig: SmtpRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliverer = rig.app.state.smtp_deliverer
    await deliverer.stop()
    await in_thread(_send, rig.mx_port, message(subject="Interrupted"))
    started = asyncio.Event()

    async def hangs(*_args: Any) -> list[bool | BaseException]:
        started.set()
        await asyncio.Event().wait()  # a delivery that is still running at the stop
        raise AssertionError("not reached")

    monkeypatch.setattr(deliverer_module, "deliver_accepted", hangs)
    deliverer.start()
    await asyncio.wait_for(started.wait(), 30)
    async with rig.app.state.sessionmaker() as session:
        leased = (
            await session.execute(select(IntakeMessage.leased_until, IntakeMessage.attempts))
        ).one()
    assert leased.leased_until is not None and leased.attempts == 1

    await deliverer.stop()
    async with rig.app.state.sessionmaker() as session:
        released = (
            await session.execute(select(IntakeMessage.leased_until, IntakeMessage.attempts))
        ).one()
    # Free at once for another deliverer, and the interrupted try is not counted.
    assert released.leased_until is None and released.attempts == 0

    monkeypatch.undo()
    deliverer.start()
    assert await eventually(lambda: _alice_messages(rig, "Interrupted"), what="the filing") == 1


async def test_intake_ids_are_never_reused(rig: SmtpRig) -> None:
    await in_thread(_send, rig.mx_port, message(subject="First"))
    await intake_drained(rig.app.state.sessionmaker, deliverer=rig.app.state.smtp_deliverer)
    deliverer = rig.app.state.smtp_deliverer
    await deliverer.stop()
    await in_thread(_send, rig.mx_port, message(subject="Second"))
    async with rig.app.state.sessionmaker() as session:
        [row_id] = (await session.scalars(select(IntakeMessage.id))).all()
    # The table was empty in between; a reused id could let a late deliverer of the first
    # message end the second one's row.
    assert row_id == 2


async def test_a_full_intake_answers_452_and_takes_mail_again_once_delivered(
    rig: SmtpRig,
) -> None:
    journal = rig.app.state.smtp_intake
    deliverer = rig.app.state.smtp_deliverer
    await deliverer.stop()
    journal.max_backlog = 1
    await in_thread(_send, rig.mx_port, message(subject="Fills it"))
    with pytest.raises(smtplib.SMTPDataError) as refused:
        await in_thread(_send, rig.mx_port, message(subject="Over the limit"))
    assert refused.value.smtp_code == 452
    error = refused.value.smtp_error
    assert isinstance(error, bytes) and error.startswith(b"4.3.1")
    assert await _count(rig, IntakeMessage) == 1  # the refused one was not recorded

    deliverer.start()
    await intake_drained(rig.app.state.sessionmaker, deliverer=deliverer)
    assert journal.backlog == 0
    await in_thread(_send, rig.mx_port, message(subject="Over the limit"))  # retried later
    await intake_drained(rig.app.state.sessionmaker, deliverer=deliverer)
    assert await _alice_messages(rig, "Over the limit") == 1


async def test_a_failing_message_keeps_its_row_and_stops_after_its_attempts(
    rig: SmtpRig,
) -> None:
    deliverer = rig.app.state.smtp_deliverer
    await deliverer.stop()
    await in_thread(_send, rig.mx_port, message(subject="Used up"))
    async with rig.app.state.sessionmaker() as session:
        await session.execute(update(IntakeMessage).values(attempts=deliverer.max_attempts))
        await session.commit()
        backlog = await intake_db.backlog(session, max_attempts=deliverer.max_attempts)
        # Not claimed any more, counted as stuck (the alert), kept for the operator.
        assert (
            await intake_db.claim(
                session, limit=10, lease_seconds=60, max_attempts=deliverer.max_attempts
            )
            == []
        )
    assert (backlog.waiting, backlog.stuck) == (0, 1)
    metrics = (await rig.client.get("/metrics")).text
    assert "veze_smtp_intake_stuck 1.0" in metrics
