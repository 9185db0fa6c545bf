"""The inbound MX listener (RFC 5321) with real clients: smtplib, a raw socket and swaks."""

from __future__ import annotations

import shutil
import smtplib
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text, update

from VEZEPyCore.testing import eventually
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.db.models import IntakeMessage
from VEZEPyEmail.services.store.blobs import BlobStore
from VEZEPyEmail.tests.smtp_support import (
    DOMAIN,
    RawSession,
    SmtpRig,
    in_thread,
    intake_drained,
    message,
    noop,
    smtp_rig,
    smtp_settings,
)

ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"

Running = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
async def rig(
    email_settings: EmailSettings, running: Running, admin_headers: dict[str, str]
) -> AsyncIterator[SmtpRig]:
    async with smtp_rig(smtp_settings(email_settings), running, admin_headers) as rig:
        yield rig


def _send(
    port: int, sender: str, recipients: list[str], raw: bytes
) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("client.example.org")
        return client.sendmail(sender, recipients, raw)


async def test_mx_delivers_with_trace_headers_and_api_sees_it(
    rig: SmtpRig, mint: Callable[..., str]
) -> None:
    raw = message(subject="Over the MX")

    def send() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", rig.mx_port, timeout=10) as client:
            code, _banner = client.ehlo("client.example.org")
            assert code == 250
            # RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 6531 SMTPUTF8; no AUTH on the MX.
            assert client.has_extn("size") and client.esmtp_features["size"] == str(64 * 1024)
            assert client.has_extn("8bitmime") and client.has_extn("smtputf8")
            assert not client.has_extn("auth")
            client.mail("carol@example.org")
            client.rcpt(ALICE)
            return client.data(raw)

    code, reply = await in_thread(send)
    assert code == 250 and reply.startswith(b"2.0.0 OK queued as ")
    queue_id = reply.decode().rsplit(" ", 1)[1]

    [stored] = await rig.stored(ALICE)
    head, _, _body = stored.partition(b"\r\n\r\n")
    assert stored.startswith(b"Return-Path: <carol@example.org>\r\n")
    assert b"\r\nReceived: from client.example.org ([127.0.0.1])" in head
    assert b"\r\nAuthentication-Results: mail.vezeuniqverse.com;" in head
    assert f"id {queue_id}".encode() in head and f"for <{ALICE}>".encode() in head
    assert stored.endswith(raw)  # byte-exact after the prepended trace headers

    token = mint(ALICE, scopes=("email.read",))
    listed = await rig.client.get(
        "/api/messages", params={"user": ALICE}, headers={"Authorization": f"Bearer {token}"}
    )
    assert listed.status_code == 200, listed.text
    assert "Over the MX" in [m["subject"] for m in listed.json()["messages"]]


async def test_mx_refuses_unknown_users_and_relaying_and_keeps_serving(rig: SmtpRig) -> None:
    def session() -> list[tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", rig.mx_port, timeout=10) as client:
            client.ehlo("client.example.org")
            client.mail("carol@example.org")
            replies = [
                client.rcpt(f"nobody@{DOMAIN}"),
                client.rcpt("victim@example.net"),
                client.rcpt(f"ALICE@{DOMAIN.upper()}"),
            ]
            replies.append(client.noop())
            return replies

    unknown, relay, alice, noop_reply = await in_thread(session)
    assert unknown[0] == 550 and unknown[1].startswith(b"5.1.1")
    assert relay == (550, b"5.7.1 Relaying denied")
    assert alice[0] == 250
    assert noop_reply[0] == 250
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        await in_thread(_send, rig.mx_port, "x@example.org", ["y@example.com"], message())
    assert await in_thread(noop, rig.mx_port) == 250


async def test_mx_enforces_size_and_recipient_limits(rig: SmtpRig) -> None:
    def session() -> list[tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", rig.mx_port, timeout=10) as client:
            client.ehlo("client.example.org")
            declared = client.mail("carol@example.org", ["SIZE=999999999"])
            client.rset()
            client.mail("carol@example.org")
            rcpts = [client.rcpt(ALICE), client.rcpt(BOB), client.rcpt(ALICE)]
            rcpts.append(client.rcpt(BOB))  # the fourth: max_recipients is 3
            big = message() + b"x" * 70 + (b"y" * 900 + b"\r\n") * 80
            oversize = client.data(big)
            return [declared, *rcpts, oversize, client.noop()]

    declared, r1, r2, r3, fourth, oversize, after = await in_thread(session)
    assert declared[0] == 552 and declared[1].startswith(b"5.3.4")
    assert [r1[0], r2[0], r3[0]] == [250, 250, 250]
    assert fourth == (452, b"4.5.3 Too many recipients")
    assert oversize[0] == 552 and oversize[1].startswith(b"5.3.4")
    assert after[0] == 250
    assert await rig.stored(ALICE) == []


async def test_mx_line_too_long_is_refused_and_session_continues(rig: SmtpRig) -> None:
    def session() -> tuple[tuple[int, str], tuple[int, str], tuple[int, str]]:
        raw = RawSession(rig.mx_port)
        try:
            raw.command(b"EHLO client.example.org")
            raw.command(b"MAIL FROM:<carol@example.org>")
            raw.command(b"RCPT TO:<" + ALICE.encode() + b">")
            raw.command(b"DATA")
            too_long = raw.send(b"Subject: long\r\n\r\n" + b"z" * 5000 + b"\r\n.\r\n")
            return too_long, raw.command(b"NOOP"), raw.command(b"RSET")
        finally:
            raw.close()

    too_long, after, rset = await in_thread(session)
    assert too_long[0] == 500 and "5.5.2" in too_long[1]
    assert after[0] == 250 and rset[0] == 250


async def test_mx_disconnects_after_too_many_errors(rig: SmtpRig) -> None:
    def session() -> list[tuple[int, str]]:
        raw = RawSession(rig.mx_port)
        replies = []
        try:
            raw.command(b"EHLO client.example.org")
            raw.command(b"MAIL FROM:<carol@example.org>")
            for n in range(6):
                replies.append(raw.command(f"RCPT TO:<nobody{n}@{DOMAIN}>".encode()))
            replies.append(raw.read_reply())
            return replies
        finally:
            raw.close()

    replies = await in_thread(session)
    assert [code for code, _ in replies[:6]] == [550] * 6
    assert replies[6][0] == 421 and "4.7.0" in replies[6][1]
    assert await in_thread(noop, rig.mx_port) == 250


MALFORMED = {
    "broken boundary": (
        b"From: a@example.org\r\nSubject: broken\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n--XX\r\n'
        b"Content-Type: text/plain\r\n\r\npart one, never closed\r\n--YY\r\n"
    ),
    "bad encodings": (
        b"From: =?utf-8?B?!!!notbase64?= <a@example.org>\r\nSubject: =?bogus?Q?x?=\r\n"
        b"Content-Transfer-Encoding: base64\r\nContent-Type: text/plain; charset=nonsense\r\n"
        b"\r\n@@@ not base64 \xff\xfe\r\n"
    ),
    "NUL bytes": b"From: a@example.org\r\nSubject: nul\x00here\r\n\r\nbody\x00with\x00nuls\r\n",
    "huge header": (
        b"From: a@example.org\r\nSubject: huge\r\nX-Long: start"
        + b"".join(b"\r\n\t" + b"w" * 900 for _ in range(40))
        + b"\r\n\r\nbody\r\n"
    ),
    "8-bit and no headers": "héllo wörld, no header block at all\r\n".encode(),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
async def test_mx_stores_malformed_mime_byte_exact(rig: SmtpRig, name: str) -> None:
    raw = MALFORMED[name]

    def send() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", rig.mx_port, timeout=10) as client:
            client.ehlo("client.example.org")
            client.mail("carol@example.org", ["BODY=8BITMIME"])
            client.rcpt(ALICE)
            return client.data(raw)

    code, _ = await in_thread(send)
    assert code == 250
    [stored] = await rig.stored(ALICE)
    assert stored.endswith(raw)
    assert await in_thread(noop, rig.mx_port) == 250


async def test_mx_answers_451_when_it_cannot_record_the_message(rig: SmtpRig) -> None:
    # A real failure: the intake table is not there, so the accepted message cannot be
    # recorded, and the sender is told to try again instead of getting a 250.
    async with rig.app.state.sessionmaker() as session:
        await session.execute(text("ALTER TABLE smtp_intake RENAME TO smtp_intake_away"))
        await session.commit()
    try:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            await in_thread(_send, rig.mx_port, "carol@example.org", [ALICE], message())
        assert refused.value.smtp_code == 451
        error = refused.value.smtp_error
        assert isinstance(error, bytes) and error.startswith(b"4.3.0")
    finally:
        async with rig.app.state.sessionmaker() as session:
            await session.execute(text("ALTER TABLE smtp_intake_away RENAME TO smtp_intake"))
            await session.commit()
    assert await rig.stored(ALICE) == []
    await in_thread(_send, rig.mx_port, "carol@example.org", [ALICE], message())
    assert len(await rig.stored(ALICE)) == 1


async def test_an_accepted_message_survives_a_failing_store_until_it_works(
    rig: SmtpRig, tmp_path: Path
) -> None:
    # A real failure after the 250: the blob store's root is a file, so delivery cannot write.
    # The message stays recorded and is delivered once the store works again.
    not_a_dir = tmp_path / "not-a-dir"
    not_a_dir.write_bytes(b"")
    working = rig.app.state.blobs
    deliverer = rig.app.state.smtp_deliverer
    rig.app.state.blobs = BlobStore(not_a_dir)
    try:
        raw = message(subject="Kept through a store failure")
        await in_thread(_send, rig.mx_port, "carol@example.org", [ALICE], raw)
        await eventually(lambda: deliverer.failed >= 1, what="a failed delivery attempt")
        async with rig.app.state.sessionmaker() as session:
            kept = await session.scalar(select(func.count()).select_from(IntakeMessage))
        assert kept == 1
    finally:
        rig.app.state.blobs = working
    # Its lease is given back, as a restarted deliverer would find it after the lease ran out.
    async with rig.app.state.sessionmaker() as session:
        await session.execute(update(IntakeMessage).values(leased_until=None))
        await session.commit()
    deliverer.wake()
    [stored] = await rig.stored(ALICE)
    assert stored.endswith(raw)


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed")
async def test_swaks_delivers_to_the_mx(rig: SmtpRig) -> None:
    result = await in_thread(
        lambda: subprocess.run(
            [
                "swaks",
                "--server",
                f"127.0.0.1:{rig.mx_port}",
                "--from",
                "swaks@example.org",
                "--to",
                ALICE,
                "--helo",
                "swaks.example.org",
                "--header",
                "Subject: from swaks",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "<-  250 2.0.0 OK queued as" in result.stdout
    [stored] = await rig.stored(ALICE)
    assert b"Subject: from swaks" in stored


async def test_mx_files_spam_in_junk_with_its_score(rig: SmtpRig, mint: Callable[..., str]) -> None:
    spam = (
        b"From: Winner <prize@example.org>\r\n"
        b"To: alice@vezeuniqverse.com\r\n"
        b"Subject: YOU HAVE WON A FREE PRIZE!!!!!\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n"
        b"\r\n"
        b"<p>Congratulations, you have won! Act now, limited time offer, click here to claim"
        b" your free money. 100% free, no risk, wire transfer today!!!</p>\r\n"
    )
    refused = await in_thread(lambda: _send(rig.mx_port, "prize@example.org", [ALICE], spam))
    ham = message(subject="Lunch tomorrow?")
    await in_thread(lambda: _send(rig.mx_port, "carol@example.org", [ALICE], ham))
    assert refused == {}  # accepted for every recipient: junk is filed, not refused
    await intake_drained(rig.app.state.sessionmaker, deliverer=rig.app.state.smtp_deliverer)
    headers = {"Authorization": f"Bearer {mint(ALICE, scopes=('email.read',))}"}
    junk = await rig.client.get(
        "/api/messages", params={"user": ALICE, "folder": "Junk"}, headers=headers
    )
    inbox = await rig.client.get("/api/messages", params={"user": ALICE}, headers=headers)
    [filed] = junk.json()["messages"]
    assert filed["subject"] == "YOU HAVE WON A FREE PRIZE!!!!!"
    assert filed["spam_score"] >= 5
    inbox_subjects = [m["subject"] for m in inbox.json()["messages"]]
    assert "Lunch tomorrow?" in inbox_subjects
    assert filed["subject"] not in inbox_subjects
