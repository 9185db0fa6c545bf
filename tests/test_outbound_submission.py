"""End to end: a mail client submits to a remote address; the remote MX gets it DKIM-signed.

A real portal (account passwords), Email's real submission listener (STARTTLS + AUTH), the
outbound queue and worker, and a second local aiosmtpd server playing the remote domain's MX.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from email.message import EmailMessage

import dkim  # type: ignore[import-untyped]
import httpx
from fastapi import FastAPI

from VEZEPyEmail.app.main import create_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.services.smtp.tls import certificate_paths
from VEZEPyEmail.tests.outbound_helpers import (
    RemoteMx,
    eventually,
    finished_task,
    inbox_messages,
    remote_mx,
)
from VEZEPyEmail.tests.smtp_support import in_thread, smtp_rig, smtp_settings
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.tests.oidc_support import PASSWORD, create_user, serve_portal

Running = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]
ALICE = "alice@vezeuniqverse.com"


def submit(port: int, tls: ssl.SSLContext, recipient: str, subject: str) -> dict[str, object]:
    message = EmailMessage()
    message["From"] = ALICE
    message["To"] = recipient
    message["Subject"] = subject
    message.set_content("Across the internet.\n")
    with smtplib.SMTP("127.0.0.1", port, timeout=15) as client:
        client.starttls(context=tls)
        client.login("alice", PASSWORD)
        return dict(client.send_message(message, from_addr=ALICE, to_addrs=[recipient]))


async def test_submitted_remote_mail_is_delivered_signed_or_bounced(
    portal_settings: PortalSettings,
    email_settings: EmailSettings,
    running: Running,
    mint: Callable[..., str],
) -> None:
    async with serve_portal(portal_settings) as portal, remote_mx(RemoteMx()) as mx:
        await create_user(portal, "alice")
        settings = smtp_settings(
            email_settings,
            jwks_url=f"{portal.url}/.well-known/jwks.json",
            jwt_iss=portal.url,
            service_urls={"portal": portal.url},
            outbound_mx_overrides=f"remote.test=127.0.0.1:{mx.port}",
            outbound_backoff_seconds=0.01,
            outbound_max_backoff_seconds=0.05,
        )
        token = mint("svc:portal", scopes=("email.admin",), issuer=portal.url)
        admin = {"Authorization": f"Bearer {token}"}
        async with smtp_rig(
            settings, running, admin, app=create_app(settings), mailboxes=("alice",)
        ) as rig:
            cert, _ = certificate_paths(settings)
            tls = ssl.create_default_context(cafile=str(cert))
            state = rig.app.state

            refused = await in_thread(submit, rig.submission_port, tls, "bob@remote.test", "Hi Bob")
            assert refused == {}
            await finished_task(state, "sent")
            [received] = mx.received
            assert received.rcpt_tos == ["bob@remote.test"]
            key = state.dkim_key

            def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
                record: bytes = key.txt_record.encode()
                return record

            assert dkim.verify(received.content, dnsfunc=dnsfunc)

            mx.always = "550 5.1.1 no such user"
            await in_thread(submit, rig.submission_port, tls, "nobody@remote.test", "Lost")

            async def bounced() -> list[EmailMessage] | None:
                reports = [
                    m
                    for m in await inbox_messages(state, ALICE)
                    if m.get_content_type() == "multipart/report"
                ]
                return reports or None

            [report] = await eventually(bounced)
            assert "nobody@remote.test" in report["Subject"]
