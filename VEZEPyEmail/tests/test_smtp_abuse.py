"""SMTP protocol abuse against the real listeners, with raw sockets and smtplib.

Each attack gets its RFC 5321 / RFC 4954 reply, is logged with the client's address, and
another client is served while (or right after) it runs: pipelining floods, over-long
command and DATA lines, slow senders, too many sessions from one address, AUTH guessing,
relaying through the MX and sessions that collect errors.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, suppress
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.services.smtp.tls import certificate_paths
from VEZEPyEmail.tests.smtp_support import (
    DOMAIN,
    RawSession,
    SmtpRig,
    in_thread,
    message,
    noop,
    smtp_rig,
    smtp_settings,
)

ALICE = f"alice@{DOMAIN}"
Running = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]
JUNK_LIMIT = 20
SESSIONS_PER_IP = 6


@pytest.fixture
async def rig(
    email_settings: EmailSettings, running: Running, admin_headers: dict[str, str]
) -> AsyncIterator[SmtpRig]:
    settings = smtp_settings(
        email_settings,
        smtp_junk_command_limit=JUNK_LIMIT,
        smtp_max_connections_per_ip=SESSIONS_PER_IP,
        smtp_session_timeout_seconds=3.0,
    )
    async with smtp_rig(settings, running, admin_headers) as rig:
        yield rig


def deliver(port: int, subject: str) -> dict[str, tuple[int, bytes]]:
    """Another, well-behaved client: a whole delivery to alice."""
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        client.ehlo("good.example.org")
        return client.sendmail("carol@example.org", [ALICE], message(subject=subject))


def replies_until_closed(sock: socket.socket, deadline: float = 20.0) -> list[str]:
    """Every reply line the server sends until it closes the connection."""
    sock.settimeout(deadline)
    data = b""
    with suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return [line for line in data.decode("utf-8", "replace").split("\r\n") if line]


def logged(caplog: pytest.LogCaptureFixture, *needles: str) -> bool:
    return any(all(n in record.getMessage() for n in needles) for record in caplog.records)


async def test_pipelined_flood_of_junk_commands_ends_with_421_and_runs_nothing_after(
    rig: SmtpRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="VEZEPyEmail.services.smtp")

    def flood() -> list[str]:
        with socket.create_connection(("127.0.0.1", rig.mx_port), timeout=20) as sock:
            # One write, no waiting: 5,000 NOOPs, then a transaction that must never run.
            tail = b"MAIL FROM:<x@example.org>\r\nRCPT TO:<" + ALICE.encode() + b">\r\nDATA\r\n"
            sock.sendall(b"EHLO flood.example.org\r\n" + b"NOOP\r\n" * 5000 + tail)
            return replies_until_closed(sock)

    lines = await in_thread(flood)
    codes = [line[:3] for line in lines if line[3:4] == " "]  # last line of each reply
    assert codes[0] == "220" and codes[1] == "250"  # greeting, EHLO
    assert codes[2:] == ["250"] * JUNK_LIMIT + ["421"], codes[-5:]
    assert "4.7.0" in lines[-1] and "NOOP" in lines[-1]
    assert logged(caplog, "mx", "421 4.7.0")
    # Served meanwhile and after: another client delivers.
    assert await in_thread(deliver, rig.mx_port, "after the flood") == {}
    stored = await rig.stored(ALICE)
    assert len(stored) == 1 and b"after the flood" in stored[0]  # the flood's DATA never ran


async def test_pipelined_transactions_are_each_answered_in_order(rig: SmtpRig) -> None:
    def pipelined() -> list[str]:
        with socket.create_connection(("127.0.0.1", rig.mx_port), timeout=20) as sock:
            batch = b"EHLO pipe.example.org\r\n"
            for n in range(10):
                batch += (
                    b"MAIL FROM:<carol@example.org>\r\nRCPT TO:<" + ALICE.encode() + b">\r\n"
                    b"DATA\r\n" + message(subject=f"pipelined {n}") + b".\r\n"
                )
            sock.sendall(batch + b"QUIT\r\n")
            return replies_until_closed(sock)

    lines = await in_thread(pipelined)
    finals = [line[:3] for line in lines if line[3:4] == " "]
    assert finals == ["220", "250"] + ["250", "250", "354", "250"] * 10 + ["221"]
    stored = await rig.stored(ALICE)
    assert sum(b"Subject: pipelined" in raw for raw in stored) == 10


async def test_over_long_command_and_data_lines_are_refused_and_the_session_goes_on(
    rig: SmtpRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="VEZEPyEmail.services.smtp")

    def session() -> list[tuple[int, str]]:
        raw = RawSession(rig.mx_port)
        try:
            replies = [raw.command(b"EHLO long.example.org")]
            # 2 MB in one command line: read and dropped in pieces, never held whole.
            replies.append(raw.command(b"MAIL FROM:<" + b"a" * 2_000_000 + b"@example.org>"))
            replies.append(raw.command(b"NOOP"))
            replies.append(raw.command(b"MAIL FROM:<carol@example.org>"))
            replies.append(raw.command(b"RCPT TO:<" + ALICE.encode() + b">"))
            replies.append(raw.command(b"DATA"))
            body = b"Subject: long line\r\n\r\n" + b"z" * 100_000 + b"\r\n.\r\n"
            replies.append(raw.send(body))
            replies.append(raw.command(b"NOOP"))
            return replies
        finally:
            raw.close()

    replies = await in_thread(session)
    codes = [code for code, _ in replies]
    assert codes == [250, 500, 250, 250, 250, 354, 500, 250], replies
    assert "5.5.2" in replies[1][1] and "5.5.2" in replies[6][1]
    assert logged(caplog, "mx", "500 5.5.2")
    assert not any(b"long line" in raw for raw in await rig.stored(ALICE))


async def test_slow_senders_are_cut_off_while_others_are_served(
    rig: SmtpRig, caplog: pytest.LogCaptureFixture
) -> None:
    """Slowloris: bytes keep arriving, but no command (or DATA) completes within the timeout."""
    caplog.set_level(logging.INFO)

    def dribble(prefix: list[bytes], dribbled: bytes) -> tuple[str, float]:
        with socket.create_connection(("127.0.0.1", rig.mx_port), timeout=20) as sock:
            reader = sock.makefile("rb")
            reader.readline()  # greeting
            for line in prefix:
                sock.sendall(line)
                reader.readline()
            started = time.monotonic()
            try:
                for byte in dribbled:
                    sock.sendall(bytes([byte]))
                    time.sleep(0.25)
            except OSError:
                pass  # the server closed the connection under us: that is the point
            last = b""
            with suppress(OSError):
                while line := reader.readline():
                    last = line
            return last.decode(), time.monotonic() - started

    in_command = in_thread(dribble, [], b"EHLO " + b"s" * 200)
    in_data = in_thread(
        dribble,
        [
            b"EHLO slow.example.org\r\n",
            b"MAIL FROM:<carol@example.org>\r\n",
            b"RCPT TO:<" + ALICE.encode() + b">\r\n",
            b"DATA\r\n",
        ],
        b"Subject: dribbled\r\n\r\n" + b"x" * 200,
    )
    slow = asyncio.gather(in_command, in_data)
    # Meanwhile, a well-behaved client is served at once.
    assert await in_thread(deliver, rig.mx_port, "while others dribble") == {}
    for last, seconds in await slow:
        assert last.startswith("421 4.4.2"), last
        assert seconds < 20  # 200 bytes at 4/s would take 50 s: cut off by the 3 s timeout
    assert logged(caplog, "connection timeout")
    stored = await rig.stored(ALICE)
    assert any(b"while others dribble" in raw for raw in stored)
    assert not any(b"dribbled" in raw for raw in stored)


async def test_too_many_sessions_from_one_address_get_421_before_the_greeting(
    rig: SmtpRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="VEZEPyEmail.services.smtp")

    def hold_sessions() -> tuple[list[int], str, int]:
        held = [RawSession(port) for port in [rig.mx_port] * (SESSIONS_PER_IP - 1)]
        held.append(RawSession(rig.submission_port))  # the budget spans the listeners
        try:
            refused = socket.create_connection(("127.0.0.1", rig.mx_port), timeout=10)
            with refused:
                reply = replies_until_closed(refused)[0]
            codes = [session.command(b"NOOP")[0] for session in held]
        finally:
            held.pop().close()
        try:
            # One slot is free again: the next client gets its greeting and is served.
            return codes, reply, noop(rig.mx_port)
        finally:
            for session in held:
                session.close()

    codes, reply, served = await in_thread(hold_sessions)
    assert codes == [250] * SESSIONS_PER_IP  # the held sessions still work
    assert reply.startswith("421 4.7.0"), reply
    assert served == 250
    assert logged(caplog, "127.0.0.1", f"over {SESSIONS_PER_IP} sessions")


async def test_relaying_through_the_mx_is_refused_with_550_5_7_1(
    rig: SmtpRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="VEZEPyEmail.services.smtp")

    def relay() -> Any:
        with smtplib.SMTP("127.0.0.1", rig.mx_port, timeout=20) as client:
            client.ehlo("spammer.example.net")
            client.mail("spammer@example.net")
            outside = client.rcpt("victim@example.com")
            percent = client.rcpt(f"victim%example.com@{DOMAIN}")  # old source-route trick
            routed = client.rcpt(f"@{DOMAIN}:victim@example.com")
            return outside, percent, routed

    outside, percent, routed = await in_thread(relay)
    assert outside == (550, b"5.7.1 Relaying denied")
    assert percent[0] == 550 and routed[0] in (501, 550, 553)
    assert logged(caplog, "mx", "550 5.7.1 Relaying denied")
    assert await in_thread(deliver, rig.mx_port, "after the relay attempt") == {}


async def test_a_session_collecting_errors_is_closed_with_421(
    rig: SmtpRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="VEZEPyEmail.services.smtp")

    def session() -> list[str]:
        with socket.create_connection(("127.0.0.1", rig.mx_port), timeout=20) as sock:
            # Pipelined bad recipients, then a command that must not run after the 421.
            bad = b"".join(b"RCPT TO:<nobody%d@%s>\r\n" % (n, DOMAIN.encode()) for n in range(8))
            sock.sendall(b"EHLO e.example.org\r\nMAIL FROM:<c@example.org>\r\n" + bad + b"NOOP\r\n")
            return replies_until_closed(sock)

    lines = await in_thread(session)
    finals = [line[:3] for line in lines if line[3:4] == " "]
    # max_errors is 6 (smtp_settings): six 550s, then 421, and nothing after it.
    assert finals == ["220", "250", "250"] + ["550"] * 6 + ["421"], finals
    assert "Too many errors" in lines[-1]
    assert logged(caplog, "too many errors")
    assert await in_thread(noop, rig.mx_port) == 250


# -- AUTH guessing on submission ----------------------------------------------------------------


@pytest.fixture
async def auth_rig(
    email_settings: EmailSettings, running: Running, admin_headers: dict[str, str]
) -> AsyncIterator[SmtpRig]:
    settings = smtp_settings(
        email_settings,
        smtp_auth_failures_per_ip=8,
        smtp_auth_failures_per_login=3,
        smtp_auth_failure_window_seconds=3,
        smtp_max_errors=100,  # the lock-out, not the error budget, is under test
    )
    async with smtp_rig(settings, running, admin_headers) as rig:
        yield rig


def xoauth2(rig: SmtpRig, login: str, token: str) -> tuple[int, bytes]:
    """AUTH XOAUTH2 over SMTPS (RFC 8314); bearer tokens are checked by Email itself."""
    cert, _ = certificate_paths(rig.app.state.settings)
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    with smtplib.SMTP_SSL("127.0.0.1", rig.smtps_port, context=context, timeout=20) as client:
        client.ehlo("laptop.example.org")
        try:
            return client.auth(
                "XOAUTH2", lambda challenge=None: f"user={login}\x01auth=Bearer {token}\x01\x01"
            )
        except smtplib.SMTPAuthenticationError as error:
            text = error.smtp_error
            return error.smtp_code, text if isinstance(text, bytes) else text.encode()


async def test_auth_guessing_locks_the_account_until_the_window_passes(
    auth_rig: SmtpRig, mint: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="VEZEPyEmail.services.smtp")
    good = mint(ALICE, scopes=("email.send",))
    wrong = mint(ALICE, scopes=("email.send",), secret="a-guess-" + "y" * 40)

    def guesses() -> list[tuple[int, bytes]]:
        return [xoauth2(auth_rig, ALICE, wrong) for _ in range(4)] + [
            xoauth2(auth_rig, ALICE, good)  # the right credential, during the lock-out
        ]

    replies = await in_thread(guesses)
    assert [code for code, _ in replies] == [535, 535, 535, 454, 454], replies
    assert replies[0][1].startswith(b"5.7.8") and replies[-1][1].startswith(b"4.7.0")
    assert logged(caplog, "locked out", ALICE, "127.0.0.1")
    # Other listeners (and other people) are served meanwhile.
    assert await in_thread(deliver, auth_rig.mx_port, "during the lock-out") == {}

    async def unlocked() -> tuple[int, bytes]:
        deadline = time.monotonic() + 30
        while True:
            reply: tuple[int, bytes] = await in_thread(xoauth2, auth_rig, ALICE, good)
            if reply[0] != 454 or time.monotonic() > deadline:
                return reply
            await asyncio.sleep(0.5)

    code, _ = await unlocked()
    assert code == 235  # RFC 4954: authentication succeeded, once the window has passed


async def test_auth_guessing_across_logins_locks_the_address(
    auth_rig: SmtpRig, mint: Callable[..., str]
) -> None:
    wrong = mint(ALICE, scopes=("email.send",), secret="a-guess-" + "y" * 40)
    good = mint(ALICE, scopes=("email.send",))

    def spray() -> list[int]:
        # Two guesses each at many accounts stay under the per-login limit of 3.
        codes = [xoauth2(auth_rig, f"user{n}@{DOMAIN}", wrong)[0] for n in range(8)]
        return [*codes, xoauth2(auth_rig, ALICE, good)[0]]

    codes = await in_thread(spray)
    assert codes == [535] * 8 + [454], codes  # the IP's budget of 8 is spent: even alice waits
