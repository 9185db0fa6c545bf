"""`python -m VEZEPyEmail.smtp_main` with two listener processes on one MX port (SO_REUSEPORT).

Real processes, a real port, concurrent smtplib clients; every message that got a 250 is read
back from the shared database and blob store exactly once.
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from VEZEPyCore.db.engine import make_engine, make_sessionmaker
from VEZEPyCore.testing import free_port
from VEZEPyEmail.app.main import create_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.db.models import Mailbox, Message
from VEZEPyEmail.services.mailboxes.service import ensure_mailbox
from VEZEPyEmail.services.store.blobs import BlobStore
from VEZEPyEmail.smtp_main import migrate
from VEZEPyEmail.tests.smtp_support import intake_drained

DOMAIN = "processes.example"
RECIPIENT = f"carol@{DOMAIN}"
ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 6
PER_CLIENT = 5

Running = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]


async def _add_mailbox(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as session:
            await ensure_mailbox(session, address=RECIPIENT, display_name="", domain=DOMAIN)
            await session.commit()
    finally:
        await engine.dispose()


async def _stored(db_url: str) -> list[tuple[str | None, str | None]]:
    engine = make_engine(db_url)
    try:
        await intake_drained(make_sessionmaker(engine))  # delivered behind the 250s
        async with make_sessionmaker(engine)() as session:
            rows = (
                await session.execute(
                    select(Message.message_id_header, Message.blob_key)
                    .join(Mailbox, Mailbox.id == Message.mailbox_id)
                    .where(Mailbox.address == RECIPIENT, Message.subject.startswith("n"))
                )
            ).all()
    finally:
        await engine.dispose()
    return [(row[0], row[1]) for row in rows]


@pytest.fixture
async def listeners(email_settings: EmailSettings, var_dir: Path) -> AsyncIterator[int]:
    """Two smtp_main listener processes sharing one MX port; yields that port."""
    db_url = email_settings.db_url
    await migrate(email_settings)
    await _add_mailbox(db_url)
    port = free_port()
    env = {
        **os.environ,
        "VEZE_VAR_DIR": str(var_dir),
        "VEZE_MAIL_DOMAIN": DOMAIN,
        "EMAIL_DB_URL": db_url,
        "EMAIL_SMTP_HOST": "127.0.0.1",
        "EMAIL_SMTP_PORT": str(port),
        "EMAIL_SUBMISSION_PORT": str(free_port()),
        "EMAIL_SMTPS_PORT": str(free_port()),
        "EMAIL_SMTP_PROCESSES": "2",
        "EMAIL_SMTP_SEPARATE": "1",
    }
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "VEZEPyEmail.smtp_main",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=None,
    )
    try:
        assert server.stdout is not None
        pids: set[str] = set()
        while len(pids) < 2:  # both processes have bound the shared port
            line = (await asyncio.wait_for(server.stdout.readline(), 60)).decode()
            assert line, "smtp_main ended before both listeners were ready"
            if line.startswith("smtp_main ready pid="):
                pids.add(line.strip().rpartition("=")[2])
        yield port
    finally:
        server.terminate()
        assert await asyncio.wait_for(server.wait(), 60) == 0  # a clean, supervised stop


def _send_batch(port: int, client_index: int) -> list[str]:
    """One client's messages, each on a new connection; the Message-IDs that got a 250."""
    accepted: list[str] = []
    for number in range(PER_CLIENT):
        message_id = f"<{client_index}.{number}.{uuid.uuid4().hex}@sender.example>"
        raw = (
            f"From: dave@sender.example\r\nTo: {RECIPIENT}\r\nSubject: n{number}\r\n"
            f"Message-ID: {message_id}\r\n\r\nhello {client_index} {number}\r\n"
        ).encode()
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                client.sendmail("dave@sender.example", [RECIPIENT], raw)
        except smtplib.SMTPException:
            continue  # a refusal is allowed; a 250 for something not stored is not
        accepted.append(message_id)
    return accepted


async def test_two_listener_processes_store_every_accepted_message_once(
    listeners: int, email_settings: EmailSettings, var_dir: Path
) -> None:
    def send_all() -> list[list[str]]:
        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            return list(pool.map(lambda index: _send_batch(listeners, index), range(CLIENTS)))

    batches = await asyncio.to_thread(send_all)
    accepted = [message_id for batch in batches for message_id in batch]
    assert len(accepted) == CLIENTS * PER_CLIENT  # nothing refused under this light load

    stored = await _stored(email_settings.db_url)
    stored_ids = [message_id or "" for message_id, _ in stored]
    assert sorted(stored_ids) == sorted(accepted)  # each accepted message exactly once
    blobs = BlobStore(var_dir / "mail")
    for _, key in stored:
        assert key is not None
        assert b"Received: from" in await blobs.get(key)  # the raw message is on disk


async def test_web_process_starts_no_listeners_when_smtp_runs_separately(
    email_settings: EmailSettings, running: Running
) -> None:
    port = free_port()
    settings = email_settings.model_copy(
        update={
            "smtp_enabled": True,
            "smtp_separate_process": True,
            "smtp_mx_port": port,
            "smtp_submission_port": 0,
            "smtps_port": 0,
        }
    )
    app = create_app(settings)
    async with running(app):
        assert getattr(app.state, "smtp", None) is None
        assert "smtp" not in app.state.ready_checks
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)  # nothing bound on the MX port
