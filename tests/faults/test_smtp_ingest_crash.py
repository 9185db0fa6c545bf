"""`kill -9` of the SMTP listener process group in the middle of a blast, then a restart.

A real `python -m VEZEPyEmail.smtp_main` takes a blast of 2,004 small messages from 12
concurrent aiosmtplib clients, each on a persistent session. Once a share of the blast has been
answered 250, the whole process group gets SIGKILL. The clients record, per message, whether the
server said 250. After a restart on the same database and blob directory, every message that got
a 250 is stored exactly once and readable through the API, and nothing else is stored. Each
client then retries what it had in flight and a few more, as an MTA does (RFC 5321 4.5.4.1): the
server serves again, and a message stored at the moment of the kill without its 250 reaching the
client is not stored twice when it comes again.

One listener process keeps the restart short; `VEZEPyEmail/tests/test_smtp_processes.py` covers
several listener processes on one port. The kill lands after 800 acknowledgements, with 1,200
messages still to come and 12 in flight.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiosmtplib
import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from VEZEPyCore.db.engine import make_engine, make_sessionmaker
from VEZEPyCore.testing import free_port
from VEZEPyEmail.app.main import create_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.db.models import Mailbox, Message
from VEZEPyEmail.services.mailboxes.service import ensure_mailbox
from VEZEPyEmail.smtp_main import migrate
from VEZEPyEmail.tests.smtp_support import intake_drained

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 12
PER_CLIENT = 167  # 2,004 messages in all
KILL_AFTER = 800  # acknowledged messages before the kill: well inside the blast
RETRY_PER_CLIENT = 4  # after the restart: the message in flight at the kill and the next ones
SUBJECT_PREFIX = "blast "
LEASE_SECONDS = 3  # the killed deliverer's rows are free again this soon after the kill
START_SECONDS = 60  # generous: two cores, several people running tests
Running = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]


@dataclass
class Ledger:
    """The client side's record: which Message-IDs got a 250, which did not (yet)."""

    accepted: list[str] = field(default_factory=list)
    unacknowledged: set[str] = field(default_factory=set)
    enough: asyncio.Event = field(default_factory=asyncio.Event)
    kill_after: int = KILL_AFTER

    def got_250(self, message_id: str) -> None:
        self.accepted.append(message_id)
        self.unacknowledged.discard(message_id)
        if len(self.accepted) >= self.kill_after:
            self.enough.set()


def _message(recipient: str, message_id: str, number: int) -> bytes:
    return (
        f"From: blaster@sender.example\r\nTo: {recipient}\r\n"
        f"Subject: {SUBJECT_PREFIX}{number}\r\nMessage-ID: {message_id}\r\n\r\n"
        f"body of {message_id}\r\n"
    ).encode()


class Listener:
    """`python -m VEZEPyEmail.smtp_main` in its own process group, killable as a whole."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, processes: int) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "VEZEPyEmail.smtp_main",
            cwd=ROOT,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # its own process group: supervisor and listeners
        )
        assert self.process.stdout is not None
        ready = 0
        while ready < processes:
            line = await asyncio.wait_for(self.process.stdout.readline(), START_SECONDS)
            assert line, "smtp_main ended before its listeners were ready"
            ready += line.startswith(b"smtp_main ready pid=")

    async def kill_group(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        await asyncio.wait_for(self.process.wait(), 30)
        # The listeners are in the same group; wait until none of them still holds the group.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while _group_alive(self.process.pid):
            assert loop.time() < deadline, "listener processes outlived SIGKILL"
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            os.killpg(self.process.pid, signal.SIGKILL)
            await self.process.wait()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


async def _client(
    port: int, recipient: str, message_ids: list[str], numbers: list[int], ledger: Ledger
) -> None:
    """Send `message_ids` in order on one session; stop at the first failure (the kill)."""
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30, start_tls=False)
    try:
        await smtp.connect()
        for message_id, number in zip(message_ids, numbers, strict=True):
            await smtp.sendmail(
                "blaster@sender.example", [recipient], _message(recipient, message_id, number)
            )
            ledger.got_250(message_id)  # sendmail returned: the server said 250 after DATA
    except (aiosmtplib.SMTPException, OSError):
        return  # the rest of this client's messages stay unacknowledged
    finally:
        if smtp.is_connected:
            smtp.close()


async def _blast(port: int, recipient: str, plan: list[tuple[str, int]], ledger: Ledger) -> None:
    ledger.unacknowledged.update(message_id for message_id, _ in plan)
    shares = _shares(plan)
    await asyncio.gather(
        *(
            _client(port, recipient, [m for m, _ in share], [n for _, n in share], ledger)
            for share in shares
            if share
        )
    )


def _shares(plan: list[tuple[str, int]]) -> list[list[tuple[str, int]]]:
    """Client i sends every CLIENTS-th message from the i-th, in order."""
    return [plan[index::CLIENTS] for index in range(CLIENTS)]


async def _stored(db_url: str, recipient: str) -> dict[str, int]:
    """Message-ID -> how many stored rows carry it, for the blast's messages."""
    engine = make_engine(db_url)
    try:
        # What was accepted is delivered behind the 250s; what the killed process had leased
        # is taken again once its lease (LEASE_SECONDS) has run out.
        await intake_drained(make_sessionmaker(engine), timeout=120)
        async with make_sessionmaker(engine)() as session:
            rows = await session.execute(
                select(Message.message_id_header, func.count())
                .join(Mailbox, Mailbox.id == Message.mailbox_id)
                .where(Mailbox.address == recipient, Message.subject.startswith(SUBJECT_PREFIX))
                .group_by(Message.message_id_header)
            )
            return {str(message_id): int(count) for message_id, count in rows.all()}
    finally:
        await engine.dispose()


async def _ids_by_message_id(db_url: str, recipient: str) -> dict[str, int]:
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as session:
            rows = await session.execute(
                select(Message.message_id_header, Message.id)
                .join(Mailbox, Mailbox.id == Message.mailbox_id)
                .where(Mailbox.address == recipient, Message.subject.startswith(SUBJECT_PREFIX))
            )
            return {str(message_id): int(row_id) for message_id, row_id in rows.all()}
    finally:
        await engine.dispose()


@asynccontextmanager
async def _listener(
    email_settings: EmailSettings, var_dir: Path, recipient: str
) -> AsyncIterator[tuple[Listener, int]]:
    await migrate(email_settings)
    engine = make_engine(email_settings.db_url)
    try:
        async with make_sessionmaker(engine)() as session:
            await ensure_mailbox(
                session, address=recipient, display_name="", domain=email_settings.mail_domain
            )
            await session.commit()
    finally:
        await engine.dispose()
    port = free_port()
    env = {
        **os.environ,
        "VEZE_VAR_DIR": str(var_dir),
        "VEZE_MAIL_DOMAIN": email_settings.mail_domain,
        "EMAIL_DB_URL": email_settings.db_url,
        "EMAIL_SMTP_HOST": "127.0.0.1",
        "EMAIL_SMTP_PORT": str(port),
        "EMAIL_SUBMISSION_PORT": str(free_port()),
        "EMAIL_SMTPS_PORT": str(free_port()),
        "EMAIL_SMTP_PROCESSES": "1",
        "EMAIL_SMTP_SEPARATE": "1",
        "EMAIL_INTAKE_LEASE_SECONDS": str(LEASE_SECONDS),
    }
    listener = Listener(env)
    try:
        yield listener, port
    finally:
        await listener.stop()


async def test_every_message_acknowledged_before_a_kill_9_is_stored_once_and_readable(
    email_settings: EmailSettings, var_dir: Path, running: Running, mint: Callable[..., str]
) -> None:
    recipient = f"carol@{email_settings.mail_domain}"
    plan = [(f"<crash.{n}@sender.example>", n) for n in range(CLIENTS * PER_CLIENT)]
    ledger = Ledger()
    async with _listener(email_settings, var_dir, recipient) as (listener, port):
        await listener.start(processes=1)
        blast = asyncio.create_task(_blast(port, recipient, plan, ledger))
        await asyncio.wait_for(ledger.enough.wait(), 120)
        await listener.kill_group()  # mid-blast: sessions are open and messages in flight
        await asyncio.wait_for(blast, 60)  # every client has seen its connection die
        before_restart = list(ledger.accepted)
        assert KILL_AFTER <= len(before_restart) < len(plan), "the kill did not land mid-blast"

        await listener.start(processes=1)
        stored = await _stored(email_settings.db_url, recipient)
        lost = [message_id for message_id in before_restart if message_id not in stored]
        assert lost == [], f"{len(lost)} acknowledged messages lost, e.g. {lost[:3]}"
        doubled = {message_id: n for message_id, n in stored.items() if n != 1}
        assert doubled == {}, f"stored more than once: {list(doubled.items())[:3]}"
        # At most the one message each client had in flight may be stored without its 250.
        unacknowledged_but_stored = set(stored) - set(before_restart)
        assert len(unacknowledged_but_stored) <= CLIENTS

        # The server serves again: each client retries from its first unacknowledged message.
        retry = [
            item
            for share in _shares(plan)
            for item in [m for m in share if m[0] in ledger.unacknowledged][:RETRY_PER_CLIENT]
        ]
        ledger.kill_after = len(plan) + 1
        await asyncio.wait_for(_blast(port, recipient, retry, ledger), 120)
        assert ledger.unacknowledged == {m for m, _ in plan} - set(ledger.accepted)
        assert {m for m, _ in retry} <= set(ledger.accepted)  # every retry got its 250
        stored = await _stored(email_settings.db_url, recipient)  # delivered by the listener

    # Each acknowledged message once, including one that came again; nothing never sent.
    assert stored == dict.fromkeys(ledger.accepted, 1)
    assert len(ledger.accepted) == len(set(ledger.accepted))

    # Readable through the API: every acknowledged message's detail and its own body.
    ids = await _ids_by_message_id(email_settings.db_url, recipient)
    token = mint(recipient, scopes=("email.read",))
    headers = {"Authorization": f"Bearer {token}"}
    async with running(create_app(email_settings)) as client:
        for message_id in ledger.accepted:
            response = await client.get(f"/api/messages/{ids[message_id]}", headers=headers)
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["message_id"] == message_id
            assert f"body of {message_id}" in body["text"]
