"""Remote delivery through the outbound queue, against a second local SMTP server as the MX."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import dkim  # type: ignore[import-untyped]
import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from VEZEPyEmail.app.main import create_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.services.outbound.queue import enqueue_outbound
from VEZEPyEmail.services.outbound.worker import worker_for_app
from VEZEPyEmail.services.smtp.tls import server_context
from VEZEPyEmail.tests.conftest import provision
from VEZEPyEmail.tests.outbound_helpers import (
    RemoteMx,
    eventually,
    finished_task,
    inbox_messages,
    remote_mx,
    task_rows,
)

SENDER = "alice@vezeuniqverse.com"
REMOTE = "bob@remote.test"
Running = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]


def message(subject: str = "Hello remote") -> bytes:
    return (
        f"From: Alice <{SENDER}>\r\nTo: <{REMOTE}>\r\nSubject: {subject}\r\n"
        "Date: Fri, 27 Nov 2026 05:00:00 +0000\r\n"
        "Message-ID: <m1@vezeuniqverse.com>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nHi Bob,\r\nsee you.\r\n"
    ).encode()


def outbound_settings(settings: EmailSettings, port: int, **overrides: Any) -> EmailSettings:
    values: dict[str, Any] = {
        "outbound_mx_overrides": f"remote.test=127.0.0.1:{port}",
        "outbound_backoff_seconds": 0.01,
        "outbound_max_backoff_seconds": 0.05,
        "outbound_poll_seconds": 0.05,
        "outbound_smtp_timeout_seconds": 5.0,
    }
    values.update(overrides)
    return settings.model_copy(update=values)


@pytest.fixture
async def mx() -> AsyncIterator[RemoteMx]:
    async with remote_mx(RemoteMx()) as server:
        yield server


@pytest.fixture
async def started(
    email_settings: EmailSettings,
    mx: RemoteMx,
    running: Running,
    admin_headers: dict[str, str],
    request: pytest.FixtureRequest,
) -> AsyncIterator[FastAPI]:
    overrides: dict[str, Any] = getattr(request, "param", {})
    app = create_app(outbound_settings(email_settings, mx.port, **overrides))
    async with running(app) as client:
        await provision(client, admin_headers, SENDER)
        yield app


async def queue_command(environment: dict[str, str], *args: str) -> tuple[int, str]:
    """`python -m VEZEPyCore.queue dead-letters ...` in a process of its own: (exit code, out)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "VEZEPyCore.queue",
        "dead-letters",
        *args,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(60):
        out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


def dsn_reports(messages: list[EmailMessage]) -> list[EmailMessage]:
    return [m for m in messages if m.get_content_type() == "multipart/report"]


def delivery_status(report: EmailMessage) -> str:
    """The message/delivery-status part as text (the email package parses it into blocks)."""
    for part in report.walk():
        if part.get_content_type() == "message/delivery-status":
            blocks = part.get_payload()
            assert isinstance(blocks, list)
            return "\n".join(str(block) for block in blocks)
    raise AssertionError("no message/delivery-status part")


async def test_delivers_dkim_signed_mail_to_the_remote_mx(started: FastAPI, mx: RemoteMx) -> None:
    await enqueue_outbound(started.state, raw=message(), envelope_from=SENDER, recipients=[REMOTE])

    task = await finished_task(started.state, "sent")
    assert task.attempts == 1 and task.last_error is None
    assert len(mx.received) == 1
    received = mx.received[0]
    assert received.rcpt_tos == [REMOTE]
    assert received.mail_from == SENDER
    assert received.content.startswith(b"DKIM-Signature:")
    assert b"Hi Bob," in received.content
    key = started.state.dkim_key
    assert b"d=vezeuniqverse.com" in received.content and b"s=veze1" in received.content

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"veze1._domainkey.vezeuniqverse.com."
        record: bytes = key.txt_record.encode()
        return record

    assert dkim.verify(received.content, dnsfunc=dnsfunc)


async def test_starttls_is_used_when_the_remote_offers_it(
    email_settings: EmailSettings, running: Running, admin_headers: dict[str, str]
) -> None:
    # The remote insists on STARTTLS (its self-signed certificate is not verified: RFC 7435).
    tls = server_context(email_settings)
    async with remote_mx(RemoteMx(), tls_context=tls) as mx:
        app = create_app(outbound_settings(email_settings, mx.port))
        async with running(app) as client:
            await provision(client, admin_headers, SENDER)
            await enqueue_outbound(
                app.state, raw=message(), envelope_from=SENDER, recipients=[REMOTE]
            )
            await finished_task(app.state, "sent")
    assert [item.tls for item in mx.received] == [True]


async def test_temporary_failure_is_retried_until_it_succeeds(
    started: FastAPI, mx: RemoteMx
) -> None:
    mx.rcpt_replies = ["451 4.3.0 try again later", "421 4.7.0 busy"]
    await enqueue_outbound(started.state, raw=message(), envelope_from=SENDER, recipients=[REMOTE])

    task = await finished_task(started.state, "sent")
    assert task.attempts == 3
    assert len(mx.received) == 1
    assert dsn_reports(await inbox_messages(started.state, SENDER)) == []


async def test_permanent_failure_bounces_a_dsn_to_the_sender(
    started: FastAPI, mx: RemoteMx
) -> None:
    mx.always = "550 5.1.1 no such user here"
    await enqueue_outbound(started.state, raw=message(), envelope_from=SENDER, recipients=[REMOTE])

    task = await finished_task(started.state, "failed")
    assert task.attempts == 1
    assert task.last_error is not None and "550 5.1.1" in task.last_error
    reports = dsn_reports(await inbox_messages(started.state, SENDER))
    assert len(reports) == 1
    report = reports[0]
    assert report.get_param("report-type") == "delivery-status"
    assert report["Auto-Submitted"] == "auto-replied"
    status = delivery_status(report)
    assert "Reporting-MTA: dns; mail.vezeuniqverse.com" in status
    assert f"Final-Recipient: rfc822; {REMOTE}" in status
    assert "Action: failed" in status
    assert "Status: 5.1.1" in status
    assert "Diagnostic-Code: smtp; 550 5.1.1 no such user here" in status
    kinds = [part.get_content_type() for part in report.iter_parts()]
    assert kinds == ["text/plain", "message/delivery-status", "text/rfc822-headers"]
    headers = list(report.iter_parts())[2].get_content()
    assert "Subject: Hello remote" in headers and "Hi Bob" not in headers
    assert mx.received == []


# Long enough for several attempts even on a loaded machine (backoff is 10-50 ms here).
@pytest.mark.parametrize("started", [{"outbound_lifetime_seconds": 2.0}], indirect=True)
async def test_expiry_after_temporary_failures_bounces(started: FastAPI, mx: RemoteMx) -> None:
    mx.always = "451 4.3.0 still busy"
    await enqueue_outbound(started.state, raw=message(), envelope_from=SENDER, recipients=[REMOTE])

    task = await finished_task(started.state, "failed")
    assert task.attempts >= 2
    reports = dsn_reports(await inbox_messages(started.state, SENDER))
    assert len(reports) == 1
    status = delivery_status(reports[0])
    assert "Status: 4.4.7" in status and "Action: failed" in status
    assert "451 4.3.0 still busy" in status


async def test_null_sender_is_never_bounced(started: FastAPI, mx: RemoteMx) -> None:
    mx.always = "550 5.7.1 go away"
    await enqueue_outbound(started.state, raw=message(), envelope_from="", recipients=[REMOTE])

    task = await finished_task(started.state, "failed")
    assert mx.mail_froms == ["<>"] or mx.mail_froms == [""]
    assert task.last_error is not None and "550 5.7.1" in task.last_error
    assert dsn_reports(await inbox_messages(started.state, SENDER)) == []
    assert len(await task_rows(started.state)) == 1  # no DSN queued either


async def test_unreachable_mx_is_retried(
    email_settings: EmailSettings, running: Running, mx: RemoteMx
) -> None:
    # A closed port: connection refused is a temporary failure (RFC 5321 4.5.4.1).
    settings = outbound_settings(email_settings, 1, outbound_worker=False)
    app = create_app(settings)
    async with running(app):
        await enqueue_outbound(app.state, raw=message(), envelope_from=SENDER, recipients=[REMOTE])
        worker = app.state.outbound_worker
        assert await worker.process_due() == 1
        [task] = await task_rows(app.state)
        assert task.status == "queued" and task.attempts == 1
        assert task.last_error is not None and "connect" in task.last_error
        assert task.next_attempt_at > task.updated_at - timedelta(seconds=1)


@pytest.mark.parametrize("started", [{"outbound_worker": False}], indirect=True)
async def test_a_dead_workers_lease_runs_out_and_another_worker_delivers(
    started: FastAPI, mx: RemoteMx
) -> None:
    await enqueue_outbound(started.state, raw=message(), envelope_from=SENDER, recipients=[REMOTE])
    dead = worker_for_app(started, metrics=CollectorRegistry())
    survivor = worker_for_app(started, metrics=CollectorRegistry())
    [claimed] = await dead.claim_due()  # ... and the process dies before sending
    [row] = await task_rows(started.state)
    assert row.status == "sending" and row.leased_until is not None

    assert await survivor.claim_due() == []  # the lease still holds
    later = row.leased_until + timedelta(seconds=1)
    [retaken] = await survivor.claim_due(now=later)
    assert retaken.id == claimed.id and retaken.attempts == 2
    await survivor.process(retaken)

    [row] = await task_rows(started.state)
    assert row.status == "sent" and row.lease_token is None
    assert len(mx.received) == 1
    # The dead worker's late outcome no longer counts.
    assert not await dead.table.finish(
        started.state.sessionmaker,
        claimed,
        status="queued",
        error="late",
        next_attempt_at=later,
        now=later,
    )
    [row] = await task_rows(started.state)
    assert row.status == "sent"


async def test_one_row_per_recipient(started: FastAPI, mx: RemoteMx) -> None:
    recipients = [REMOTE, "carol@remote.test"]
    await enqueue_outbound(
        started.state, raw=message(), envelope_from=SENDER, recipients=recipients
    )

    async def all_sent() -> bool:
        rows = await task_rows(started.state)
        return len(rows) == 2 and all(row.status == "sent" for row in rows)

    await eventually(all_sent)
    assert sorted(r for item in mx.received for r in item.rcpt_tos) == sorted(recipients)


async def test_a_message_queued_again_for_the_same_origin_is_queued_once(
    started: FastAPI, mx: RemoteMx
) -> None:
    async def queue(origin: str | None, subject: str) -> None:
        await enqueue_outbound(
            started.state,
            raw=message(subject),
            envelope_from=SENDER,
            recipients=[REMOTE],
            origin=origin,
        )

    # A cause that runs again (a retried delivery, a DSN after a crash), here also two at once.
    await asyncio.gather(queue("intake:7:srs", "first try"), queue("intake:7:srs", "racing try"))
    await queue("intake:7:srs", "second try")
    await queue("intake:8:srs", "another cause")
    await queue(None, "no origin")
    await queue(None, "no origin")

    async def all_sent() -> bool:
        rows = await task_rows(started.state)
        return len(rows) == 4 and all(row.status == "sent" for row in rows)

    await eventually(all_sent)
    subjects = sorted(
        str(BytesParser(policy=policy.default).parsebytes(item.content)["Subject"])
        for item in mx.received
    )
    [origin_7] = [subject for subject in subjects if subject.endswith(" try")]
    assert origin_7 in ("first try", "racing try")  # one of the racers; never the later try
    assert [subject for subject in subjects if subject != origin_7] == [
        "another cause",
        "no origin",
        "no origin",
    ]


async def test_a_bounced_delivery_is_a_dead_letter_the_command_lists_and_replays(
    started: FastAPI, mx: RemoteMx
) -> None:
    mx.always = "550 5.7.1 blocked for now"
    await enqueue_outbound(started.state, raw=message(), envelope_from=SENDER, recipients=[REMOTE])
    dead = await finished_task(started.state, "failed")

    # The operator's command, run as operators run it, with the Email service's environment.
    environment = {**os.environ, "EMAIL_DB_URL": started.state.settings.db_url}
    code, listed = await queue_command(environment, "list", "email.outbound", "--json")
    assert code == 0, listed
    [entry] = [json.loads(line) for line in listed.splitlines()]
    assert (entry["id"], entry["recipients"]) == (dead.id, [REMOTE])
    assert "550 5.7.1 blocked for now" in entry["last_error"]

    mx.always = None  # the remote lifted its block
    code, replayed = await queue_command(
        environment, "replay", "email.outbound", "--id", str(dead.id)
    )
    assert code == 0, replayed
    assert f"replayed 1 job(s) of email.outbound: [{dead.id}]" in replayed

    sent = await finished_task(started.state, "sent")
    assert (sent.id, sent.attempts, sent.last_error) == (dead.id, 1, None)
    # A whole new lifetime from the moment of the replay, not what was left of the old one.
    replayed_at = sent.expires_at - (dead.expires_at - dead.created_at)
    assert dead.updated_at < replayed_at <= sent.updated_at
    assert [item.rcpt_tos for item in mx.received] == [[REMOTE]]
