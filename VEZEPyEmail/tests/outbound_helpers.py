"""A second local SMTP server that plays a remote domain's MX, and polling helpers."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, TypeVar

from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session
from sqlalchemy import select

from VEZEPyEmail.db.models import Mailbox, Message, OutboundTask

T = TypeVar("T")


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    #: The session ran over TLS (after STARTTLS).
    tls: bool = False


@dataclass
class RemoteMx:
    """Answers RCPT with the scripted replies first (e.g. "451 ..."), then 250."""

    rcpt_replies: list[str] = field(default_factory=list)
    always: str | None = None
    received: list[Received] = field(default_factory=list)
    mail_froms: list[str] = field(default_factory=list)
    port: int = 0

    async def handle_MAIL(
        self, server: SMTPServer, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        self.mail_froms.append(address)
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTPServer, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.always is not None:
            return self.always
        if self.rcpt_replies:
            return self.rcpt_replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.received.append(
            Received(
                envelope.mail_from or "",
                list(envelope.rcpt_tos),
                content,
                tls=session.ssl is not None,
            )
        )
        return "250 2.0.0 queued"


@asynccontextmanager
async def remote_mx(
    mx: RemoteMx, *, tls_context: ssl.SSLContext | None = None
) -> AsyncIterator[RemoteMx]:
    """Serve `mx` on a free port; with `tls_context` it offers and requires STARTTLS."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTPServer(
            mx,
            hostname="mx.remote.test",
            tls_context=tls_context,
            require_starttls=tls_context is not None,
        ),
        "127.0.0.1",
        0,
    )
    mx.port = server.sockets[0].getsockname()[1]
    try:
        yield mx
    finally:
        server.close()
        await server.wait_closed()


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, attempts: int = 500, interval: float = 0.01
) -> T:
    """Poll `probe` until it returns something truthy (bounded: about `attempts * interval`)."""
    for _ in range(attempts):
        value = await probe()
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError("condition not met in time")


async def task_rows(state: Any) -> list[OutboundTask]:
    async with state.sessionmaker() as session:
        return list(await session.scalars(select(OutboundTask).order_by(OutboundTask.id)))


async def finished_task(state: Any, status: str) -> OutboundTask:
    async def probe() -> OutboundTask | None:
        rows = await task_rows(state)
        return rows[0] if rows and rows[0].status == status else None

    return await eventually(probe)


async def inbox_messages(state: Any, address: str) -> list[EmailMessage]:
    async with state.sessionmaker() as session:
        rows = list(
            await session.scalars(
                select(Message)
                .join(Mailbox, Mailbox.id == Message.mailbox_id)
                .where(Mailbox.address == address, Message.folder == "INBOX")
                .order_by(Message.id)
            )
        )
    parsed = []
    for row in rows:
        if row.blob_key is None:
            continue  # the welcome mail, rendered from its text
        raw = await state.blobs.get(row.blob_key)
        parsed.append(message_from_bytes(raw, policy=policy.default))
    return parsed
