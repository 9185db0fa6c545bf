"""Submission (RFC 6409) with real clients, checked against a real portal.

The portal runs under uvicorn; Email's listeners ask it for account and app passwords
(`POST /internal/auth/verify`, with a client-credentials token of veze-email-service) and
verify OAUTHBEARER (RFC 7628) / XOAUTH2 tokens by the portal's JWKS.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import shutil
import smtplib
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from tests.test_oidc_flow import webmail_token
from VEZEPyEmail.app.main import create_app as create_email_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.db.models import OutboundTask
from VEZEPyEmail.services.smtp.tls import certificate_paths
from VEZEPyEmail.tests.smtp_support import SmtpRig, in_thread, noop, smtp_rig, smtp_settings
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.services.accounts.service import create_app_password
from VEZEPyUniQVerse.tests.oidc_support import (
    PASSWORD,
    ServedPortal,
    create_user,
    serve_portal,
)

Running = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]
DOMAIN = "vezeuniqverse.com"
ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"


@dataclass
class Stack:
    portal: ServedPortal
    rig: SmtpRig
    app_password: str
    tls: ssl.SSLContext
    mint: Callable[..., str]

    async def inbox(self, address: str, folder: str = "INBOX") -> list[bytes]:
        return await self.rig.stored(address, folder=folder)


@pytest.fixture
async def stack(
    portal_settings: PortalSettings,
    email_settings: EmailSettings,
    running: Running,
    mint: Callable[..., str],
) -> AsyncIterator[Stack]:
    async with serve_portal(portal_settings) as portal:
        alice = await create_user(portal, "alice")
        await create_user(portal, "bob")
        async with portal.sessionmaker.begin() as db:
            _, app_password = await create_app_password(db, user=alice, name="Thunderbird")
        settings = smtp_settings(
            email_settings,
            jwks_url=f"{portal.url}/.well-known/jwks.json",
            jwt_iss=portal.url,
            service_urls={"portal": portal.url},
        )
        # Email trusts the portal's issuer now; test-minted HS256 tokens name it too.
        minter = functools.partial(mint, issuer=portal.url)
        admin = {"Authorization": f"Bearer {minter('svc:portal', scopes=('email.admin',))}"}
        async with smtp_rig(settings, running, admin, app=create_email_app(settings)) as rig:
            cert, _ = certificate_paths(settings)
            tls = ssl.create_default_context(cafile=str(cert))  # verified, not blindly trusted
            yield Stack(portal, rig, app_password, tls, minter)


def mail(*, sender: str = ALICE, to: str = BOB, subject: str = "Submitted") -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message.set_content("Sent through submission.\n")
    return message


def submit(
    stack: Stack,
    *,
    login: str,
    password: str,
    mechanism: str = "PLAIN",
    message: EmailMessage | bytes | None = None,
    envelope_from: str = ALICE,
    to: list[str] | None = None,
) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", stack.rig.submission_port, timeout=15) as client:
        client.ehlo("laptop.example.org")
        assert not client.has_extn("auth")  # RFC 3207 section 6: AUTH only after TLS
        client.starttls(context=stack.tls)
        client.ehlo("laptop.example.org")
        client.user, client.password = login, password
        method = client.auth_plain if mechanism == "PLAIN" else client.auth_login
        client.auth(mechanism, method, initial_response_ok=mechanism == "PLAIN")
        if isinstance(message, bytes):
            return client.sendmail(envelope_from, to or [BOB], message)
        return client.send_message(message or mail(), from_addr=envelope_from, to_addrs=to or [BOB])


async def test_starttls_auth_plain_with_the_account_password_delivers_and_files_sent(
    stack: Stack,
) -> None:
    refused = await in_thread(
        lambda: submit(stack, login="alice", password=PASSWORD, message=mail(subject="plain"))
    )
    assert refused == {}
    [delivered] = await stack.inbox(BOB)
    assert delivered.startswith(b"Return-Path: <alice@vezeuniqverse.com>\r\nReceived: ")
    assert b"with ESMTPSA" in delivered and b"Subject: plain" in delivered
    [sent] = await stack.inbox(ALICE, "Sent")
    assert b"Subject: plain" in sent

    token = stack.mint(BOB, scopes=("email.read",))
    listed = await stack.rig.client.get(
        "/api/messages", params={"user": BOB}, headers={"Authorization": f"Bearer {token}"}
    )
    assert "plain" in [m["subject"] for m in listed.json()["messages"]]


async def test_auth_login_with_an_app_password_and_a_full_address(stack: Stack) -> None:
    refused = await in_thread(
        lambda: submit(
            stack,
            login=ALICE,
            password=stack.app_password.upper(),  # app passwords ignore case and spaces
            mechanism="LOGIN",
            message=mail(subject="app password"),
        )
    )
    assert refused == {}
    assert any(b"Subject: app password" in raw for raw in await stack.inbox(BOB))


async def test_auth_before_starttls_is_refused(stack: Stack) -> None:
    def session() -> list[tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", stack.rig.submission_port, timeout=15) as client:
            client.ehlo("laptop.example.org")
            plain = base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode()
            replies = [client.docmd("AUTH", f"PLAIN {plain}"), client.docmd("MAIL FROM:<a@b.c>")]
            replies.append(client.noop())
            return replies

    auth, mail_from, after = await in_thread(session)
    assert auth[0] == 530 and auth[1].startswith(b"5.7.0")
    assert mail_from[0] == 530
    assert after[0] == 250


async def test_mail_before_auth_is_refused_after_starttls(stack: Stack) -> None:
    def session() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", stack.rig.submission_port, timeout=15) as client:
            client.starttls(context=stack.tls)
            client.ehlo("laptop.example.org")
            assert "PLAIN" in client.esmtp_features["auth"]
            assert "OAUTHBEARER" in client.esmtp_features["auth"]
            return client.mail(ALICE)

    code, text = await in_thread(session)
    assert code == 530 and text.startswith(b"5.7.0")


async def test_sender_spoofing_is_refused(stack: Stack) -> None:
    with pytest.raises(smtplib.SMTPSenderRefused) as envelope:
        await in_thread(lambda: submit(stack, login="alice", password=PASSWORD, envelope_from=BOB))
    assert envelope.value.smtp_code == 553
    assert bytes(envelope.value.smtp_error).startswith(b"5.7.1")

    with pytest.raises(smtplib.SMTPDataError) as header:
        await in_thread(
            lambda: submit(
                stack, login="alice", password=PASSWORD, message=mail(sender=f"Bob <{BOB}>")
            )
        )
    assert header.value.smtp_code == 553

    # The user's own address, but in From fields too long or too many to parse safely.
    rest = f"To: {BOB}\r\nSubject: x\r\n\r\nx\r\n"
    for head in (
        f"From: {ALICE}" + "\r\n (a comment)" * 400 + "\r\n",
        f"From: {ALICE}\r\n" * 5,
    ):
        send = functools.partial(
            submit, stack, login="alice", password=PASSWORD, message=(head + rest).encode()
        )
        with pytest.raises(smtplib.SMTPDataError) as unparsed:
            await in_thread(send)
        assert unparsed.value.smtp_code == 553
    assert await stack.inbox(BOB) == []
    assert await in_thread(noop, stack.rig.mx_port) == 250


async def test_wrong_passwords_are_refused_then_rate_limited(stack: Stack) -> None:
    def attempts() -> list[tuple[int, bytes | str]]:
        replies = []
        for _ in range(7):
            try:
                submit(stack, login="alice", password="not the password")
            except smtplib.SMTPAuthenticationError as exc:
                replies.append((exc.smtp_code, exc.smtp_error))
        return replies

    replies = await in_thread(attempts)
    assert [code for code, _ in replies] == [535] * 5 + [454, 454]
    assert all(isinstance(text, bytes) and text.startswith(b"5.7.8") for _, text in replies[:5])
    assert all(isinstance(text, bytes) and text.startswith(b"4.7.0") for _, text in replies[5:])
    # Even the right password waits for the window now; the server itself keeps serving.
    with pytest.raises(smtplib.SMTPAuthenticationError) as locked:
        await in_thread(lambda: submit(stack, login="alice", password=PASSWORD))
    assert locked.value.smtp_code == 454
    assert await in_thread(noop, stack.rig.mx_port) == 250


async def test_smtps_oauthbearer_with_a_portal_token(stack: Stack) -> None:
    token = (await webmail_token(stack.portal, "carol"))["access_token"]
    await create_mailbox_for(stack, "carol")
    payload = f"n,a={'carol@' + DOMAIN},\x01host=127.0.0.1\x01port={stack.rig.smtps_port}"
    payload += f"\x01auth=Bearer {token}\x01\x01"
    async with aiosmtplib.SMTP(
        hostname="127.0.0.1", port=stack.rig.smtps_port, use_tls=True, tls_context=stack.tls
    ) as client:
        await client.ehlo(hostname="laptop.example.org")
        reply = await client.execute_command(
            b"AUTH", b"OAUTHBEARER", base64.b64encode(payload.encode())
        )
        assert reply.code == 235, reply
        errors, _ = await client.send_message(
            mail(sender=f"carol@{DOMAIN}", subject="bearer"), recipients=[BOB]
        )
        assert errors == {}
    assert any(b"Subject: bearer" in raw for raw in await stack.inbox(BOB))
    assert any(b"Subject: bearer" in raw for raw in await stack.inbox(f"carol@{DOMAIN}", "Sent"))


async def test_oauthbearer_with_a_bad_token_gets_the_rfc7628_error_then_535(stack: Stack) -> None:
    payload = "n,,\x01auth=Bearer not-a-token\x01\x01"
    async with aiosmtplib.SMTP(
        hostname="127.0.0.1", port=stack.rig.smtps_port, use_tls=True, tls_context=stack.tls
    ) as client:
        await client.ehlo(hostname="laptop.example.org")
        challenge = await client.execute_command(
            b"AUTH", b"OAUTHBEARER", base64.b64encode(payload.encode())
        )
        assert challenge.code == 334
        assert b'"invalid_token"' in base64.b64decode(challenge.message)
        final = await client.execute_command(base64.b64encode(b"\x01"))
        assert final.code == 535
        assert (await client.noop()).code == 250


async def test_xoauth2_over_starttls(stack: Stack) -> None:
    token = (await webmail_token(stack.portal, "dave"))["access_token"]
    await create_mailbox_for(stack, "dave")

    def session() -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", stack.rig.submission_port, timeout=15) as client:
            client.starttls(context=stack.tls)
            client.ehlo("laptop.example.org")
            client.auth(
                "XOAUTH2",
                lambda challenge=None: f"user=dave@{DOMAIN}\x01auth=Bearer {token}\x01\x01",
            )
            return client.send_message(mail(sender=f"dave@{DOMAIN}", subject="xoauth2"))

    assert await in_thread(session) == {}
    assert any(b"Subject: xoauth2" in raw for raw in await stack.inbox(BOB))


async def test_remote_recipients_are_queued_or_refused_temporarily(stack: Stack) -> None:
    remote = "someone@example.net"

    def session() -> tuple[tuple[int, bytes], tuple[int, bytes] | None]:
        with smtplib.SMTP("127.0.0.1", stack.rig.submission_port, timeout=15) as client:
            client.starttls(context=stack.tls)
            client.login("alice", PASSWORD)
            client.mail(ALICE)
            rcpt = client.rcpt(remote)
            if rcpt[0] != 250:
                return rcpt, None
            client.rcpt(BOB)
            return rcpt, client.data(mail(to=f"{remote}, {BOB}", subject="mixed").as_bytes())

    rcpt, data = await in_thread(session)
    assert rcpt[0] == 250 and data is not None and data[0] == 250
    async with stack.rig.app.state.sessionmaker() as db:
        queued = (await db.scalars(select(OutboundTask))).all()
    assert [task.recipients for task in queued] == [[remote]]
    assert queued[0].envelope_from == ALICE
    assert any(b"Subject: mixed" in raw for raw in await stack.inbox(BOB))
    assert any(b"Subject: mixed" in raw for raw in await stack.inbox(ALICE, "Sent"))


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed")
async def test_swaks_submits_with_starttls_and_auth(stack: Stack) -> None:
    port = stack.rig.submission_port
    result = await asyncio.to_thread(
        subprocess.run,
        [
            "swaks",
            "--server",
            f"127.0.0.1:{port}",
            "--tls",
            "--auth",
            "PLAIN",
            "--auth-user",
            "alice",
            "--auth-password",
            PASSWORD,
            "--from",
            ALICE,
            "--to",
            BOB,
            "--header",
            f"From: {ALICE}",
            "--header",
            "Subject: swaks submission",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "235 2.7.0 Authentication successful" in result.stdout
    assert any(b"Subject: swaks submission" in raw for raw in await stack.inbox(BOB))


async def create_mailbox_for(stack: Stack, handle: str) -> None:
    token = stack.mint("svc:portal", scopes=("email.admin",))
    response = await stack.rig.client.post(
        "/api/mailboxes",
        json={"address": f"{handle}@{DOMAIN}"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code in (200, 201), response.text
