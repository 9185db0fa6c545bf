"""Helpers for the SMTP listener tests: an Email app with listeners on free ports."""

from __future__ import annotations

import asyncio
import smtplib
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from VEZEPyCore.testing import eventually
from VEZEPyEmail.app.main import create_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.db.models import IntakeMessage, Mailbox, Message, OutboundTask

DOMAIN = "vezeuniqverse.com"


async def intake_drained(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    deliverer: Any = None,
    timeout: float = 30.0,
) -> None:
    """Wait until every message the MX accepted has been delivered (the intake is empty),
    and `deliverer` (if given) has finished their after-commit work (events, Sieve).

    The MX answers 250 once a message is recorded; delivery follows (services/intake).
    """

    async def settled() -> bool:
        async with sessionmaker() as session:
            waiting = await session.scalar(select(func.count()).select_from(IntakeMessage))
        return not waiting and (deliverer is None or deliverer.in_flight == 0)

    await eventually(settled, what="the accepted messages' delivery", seconds=timeout)


@dataclass
class SmtpRig:
    app: FastAPI
    client: httpx.AsyncClient
    mx_port: int
    submission_port: int
    smtps_port: int

    async def stored(self, address: str, *, folder: str = "INBOX") -> list[bytes]:
        """The stored raw messages of `address` in `folder`, oldest first, once what the
        MX accepted so far is delivered."""
        sessionmaker = self.app.state.sessionmaker
        await intake_drained(sessionmaker, deliverer=self.app.state.smtp_deliverer)
        async with sessionmaker() as session:
            keys = (
                await session.scalars(
                    select(Message.blob_key)
                    .join(Mailbox, Mailbox.id == Message.mailbox_id)
                    .where(
                        Mailbox.address == address,
                        Message.folder == folder,
                        Message.blob_key.is_not(None),
                    )
                    .order_by(Message.id)
                )
            ).all()
        return [await self.app.state.blobs.get(key) for key in keys]


async def file_local_queued(app: FastAPI) -> int:
    """File what the outbound queue holds for this server's own mailboxes (Sieve redirects and
    vacation replies to local users), leaving remote rows alone; for apps whose outbound
    worker is off. How many it filed."""
    async with app.state.engine.connect() as connection:
        ids = (
            await connection.scalars(
                select(OutboundTask.id).where(
                    OutboundTask.status == "queued", OutboundTask.domain == DOMAIN
                )
            )
        ).all()
    if not ids:
        return 0
    worker = app.state.outbound_worker
    jobs = await worker.claim_due(ids=list(ids))
    for job in jobs:
        await worker.process(job)
    return len(jobs)


def smtp_settings(base: EmailSettings, **overrides: Any) -> EmailSettings:
    values: dict[str, Any] = {
        "smtp_enabled": True,
        "smtp_host": "127.0.0.1",
        "smtp_mx_port": 0,
        "smtp_submission_port": 0,
        "smtps_port": 0,
        "max_message_bytes": 64 * 1024,
        "max_recipients": 3,
        "smtp_max_errors": 6,
    }
    values.update(overrides)
    return base.model_copy(update=values)


@asynccontextmanager
async def smtp_rig(
    settings: EmailSettings,
    running: Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]],
    admin_headers: dict[str, str],
    mailboxes: tuple[str, ...] = ("alice", "bob"),
    app: FastAPI | None = None,
) -> AsyncIterator[SmtpRig]:
    app = app or create_app(settings)
    async with running(app) as client:
        for handle in mailboxes:
            response = await client.post(
                "/api/mailboxes", json={"address": f"{handle}@{DOMAIN}"}, headers=admin_headers
            )
            assert response.status_code in (200, 201), response.text
        listeners = app.state.smtp
        yield SmtpRig(
            app=app,
            client=client,
            mx_port=listeners.port("mx"),
            submission_port=listeners.port("submission"),
            smtps_port=listeners.port("smtps"),
        )


def message(
    *, sender: str = "carol@example.org", to: str = f"alice@{DOMAIN}", subject: str = "Hi"
) -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}.{id(subject)}@example.org>\r\n\r\n"
        "Hello over SMTP.\r\n"
    ).encode()


async def in_thread(function: Callable[..., Any], *args: Any) -> Any:
    """smtplib blocks: run it off the loop that serves the listeners."""
    return await asyncio.to_thread(function, *args)


def noop(port: int) -> int:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        code, _ = client.noop()
        return code


class RawSession:
    """A hand-driven SMTP session for byte-level tests (RFC 5321 wire format)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.read_reply()

    def read_reply(self) -> tuple[int, str]:
        lines = []
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("server closed the connection")
            lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))
            if line[3:4] != b"-":
                return int(lines[-1][:3]), "\n".join(lines)

    def command(self, line: bytes) -> tuple[int, str]:
        self.sock.sendall(line + b"\r\n")
        return self.read_reply()

    def send(self, data: bytes) -> tuple[int, str]:
        self.sock.sendall(data)
        return self.read_reply()

    def close(self) -> None:
        with suppress(OSError):
            self.sock.sendall(b"QUIT\r\n")
        self.file.close()
        self.sock.close()
