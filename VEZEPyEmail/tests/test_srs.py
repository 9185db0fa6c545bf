"""SRS: a Sieve redirect of remote mail to a remote address leaves with our SRS0 reverse-path,
and a bounce to that address, arriving at our MX, goes on to the original sender.

A second local aiosmtpd server plays remote.example.net's MX; mail arrives at our MX over smtplib.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.db import intake as intake_db
from VEZEPyEmail.db.models import OutboundTask
from VEZEPyEmail.services.intake.delivery import delivery_of
from VEZEPyEmail.services.srs.__main__ import main as srs_command
from VEZEPyEmail.services.srs.rotate import KEPT_EARLIER_SECRETS
from VEZEPyEmail.services.srs.service import HASH_LENGTH, Srs, load_srs, srs_of
from VEZEPyEmail.tests.outbound_helpers import RemoteMx, eventually, remote_mx
from VEZEPyEmail.tests.smtp_support import DOMAIN, SmtpRig, in_thread, smtp_rig, smtp_settings

BOB = f"bob@{DOMAIN}"
CAROL = "carol@remote.example.net"
DAVE = "dave@remote.example.net"
SECRET = "s" * 40
Running = Callable[..., Any]


def test_forward_and_reverse_round_trip() -> None:
    srs = Srs.with_secret(DOMAIN, SECRET)
    rewritten = srs.forward(f"<{CAROL}>")
    assert rewritten.startswith("SRS0=") and rewritten.endswith(
        f"={CAROL.split('@')[1]}=carol@{DOMAIN}"
    )
    assert srs.reverse(rewritten) == CAROL
    assert srs.reverse(rewritten.upper().replace(DOMAIN.upper(), DOMAIN)) is not None  # case
    # The null sender and our own addresses are never rewritten.
    assert srs.forward("") == "" and srs.forward("<>") == ""
    assert srs.forward(BOB) == BOB
    # Someone else's SRS0 becomes our SRS1, which reverses to their SRS0 (their first hop).
    theirs = "SRS0=abcd=AB=origin.test=joe@hop.test"
    ours = srs.forward(theirs)
    assert ours.startswith("SRS1=") and srs.reverse(ours) == theirs


def test_forged_short_foreign_and_expired_addresses_are_refused() -> None:
    srs = Srs.with_secret(DOMAIN, SECRET)
    rewritten = srs.forward(CAROL)
    hash_part = rewritten.split("=")[1]
    assert len(hash_part) == HASH_LENGTH
    assert srs.reverse(rewritten.replace(hash_part, "AAAAAA", 1)) is None  # wrong HMAC
    assert srs.reverse(rewritten.replace(hash_part, hash_part[:1], 1)) is None  # too short
    assert Srs.with_secret(DOMAIN, "another secret").reverse(rewritten) is None
    assert srs.reverse(rewritten.replace(DOMAIN, "elsewhere.test")) is None  # not our domain
    assert srs.reverse(f"SRS0=x@{DOMAIN}") is None and srs.reverse(BOB) is None

    # Made 30 days ago: past the 21 days a bounce may take.
    old = Srs.with_secret(DOMAIN, SECRET)
    old.engine._time_fn = lambda: time.time() - 30 * 86400
    assert srs.reverse(old.forward(CAROL)) is None


def test_the_secret_is_created_once_and_shared(email_settings: EmailSettings) -> None:
    first = load_srs(email_settings)
    path = Path(email_settings.resolved_secrets_dir) / "srs.key"
    assert path.exists() and path.stat().st_mode & 0o077 == 0
    second = load_srs(email_settings)
    assert second.reverse(first.forward(CAROL)) == CAROL


def test_rotation_signs_anew_and_bounces_to_earlier_addresses_still_return(
    email_settings: EmailSettings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("VEZE_SECRETS_DIR", str(email_settings.resolved_secrets_dir))
    handed_out = [load_srs(email_settings).forward(CAROL)]
    for _ in range(KEPT_EARLIER_SECRETS + 1):
        assert srs_command(["rotate"]) == 0
        handed_out.append(load_srs(email_settings).forward(CAROL))
    assert "new signing secret" in capsys.readouterr().out
    path = Path(email_settings.resolved_secrets_dir) / "srs.key"
    assert path.stat().st_mode & 0o077 == 0
    assert len(set(handed_out)) == len(handed_out)  # each rotation signs differently
    srs = load_srs(email_settings)
    # The newest and the KEPT_EARLIER_SECRETS before it reverse; the oldest is forgotten.
    assert [srs.reverse(address) for address in handed_out] == [None] + [CAROL] * (
        KEPT_EARLIER_SECRETS + 1
    )


@pytest.fixture
async def rig(
    email_settings: EmailSettings, running: Running, admin_headers: dict[str, str]
) -> AsyncIterator[tuple[SmtpRig, RemoteMx]]:
    async with remote_mx(RemoteMx()) as mx:
        settings = smtp_settings(
            email_settings,
            outbound_mx_overrides=f"remote.example.net=127.0.0.1:{mx.port}",
            outbound_backoff_seconds=0.01,
            outbound_max_backoff_seconds=0.05,
            outbound_poll_seconds=0.05,
            outbound_smtp_timeout_seconds=5.0,
        )
        async with smtp_rig(settings, running, admin_headers) as made:
            yield made, mx


def _send(port: int, sender: str, recipients: list[str], raw: bytes) -> dict[str, Any]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("mx.remote.example.net")
        return client.sendmail(sender, recipients, raw)


def _refused(port: int, recipient: str) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("mx.remote.example.net")
        client.mail("")
        return client.rcpt(recipient)


async def test_redirect_is_srs_rewritten_and_its_bounce_reaches_the_sender(
    rig: tuple[SmtpRig, RemoteMx], mint: Callable[..., str]
) -> None:
    smtp, mx = rig
    rules = await smtp.client.put(
        "/api/rules",
        json={"script": f'redirect "{DAVE}";'},
        headers={"Authorization": f"Bearer {mint(BOB)}"},
    )
    assert rules.status_code == 200, rules.text

    raw = (
        f"From: {CAROL}\r\nTo: {BOB}\r\nSubject: forward me\r\n"
        "Message-ID: <fwd.1@remote.example.net>\r\n\r\nHello.\r\n"
    ).encode()
    assert await in_thread(_send, smtp.mx_port, CAROL, [BOB], raw) == {}

    forwarded = await eventually(lambda: _first(mx), attempts=1000)
    assert forwarded.rcpt_tos == [DAVE]
    # Sent on from our domain (SPF passes for us), reversible to Carol.
    assert forwarded.mail_from.startswith("SRS0=") and forwarded.mail_from.endswith("@" + DOMAIN)
    assert srs_of(smtp.app.state).reverse(forwarded.mail_from) == CAROL
    assert b"Delivered-To: " + BOB.encode() in forwarded.content

    # The remote bounces it to the SRS address: our MX takes it and passes it on to Carol.
    bounce = (
        f"From: MAILER-DAEMON@remote.example.net\r\nTo: {forwarded.mail_from}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n\r\nmailbox full\r\n"
    ).encode()
    assert await in_thread(_send, smtp.mx_port, "", [forwarded.mail_from], bounce) == {}
    returned = await eventually(lambda: _nth(mx, 1), attempts=1000)
    assert returned.rcpt_tos == [CAROL] and returned.mail_from in ("", "<>")  # null stays null
    assert b"mailbox full" in returned.content and b"Received: " in returned.content
    assert b"Return-Path" not in returned.content
    assert await smtp.stored(BOB) == []  # redirect without keep: nothing filed here

    # A forged or truncated SRS address is an unknown user, never a relay.
    forged = forwarded.mail_from.replace(forwarded.mail_from.split("=")[1], "AAAAAA", 1)
    code, _ = await in_thread(_refused, smtp.mx_port, forged)
    assert code == 550


async def test_redirect_of_our_own_users_mail_keeps_its_sender(
    rig: tuple[SmtpRig, RemoteMx], mint: Callable[..., str]
) -> None:
    smtp, mx = rig
    alice = f"alice@{DOMAIN}"
    rules = await smtp.client.put(
        "/api/rules",
        json={"script": f'redirect "{DAVE}";'},
        headers={"Authorization": f"Bearer {mint(BOB)}"},
    )
    assert rules.status_code == 200, rules.text
    raw = f"From: {alice}\r\nTo: {BOB}\r\nSubject: internal\r\n\r\nHi.\r\n".encode()
    assert await in_thread(_send, smtp.mx_port, alice, [BOB], raw) == {}
    forwarded = await eventually(lambda: _first(mx), attempts=1000)
    assert forwarded.mail_from == alice and forwarded.rcpt_tos == [DAVE]


async def _first(mx: RemoteMx) -> Any:
    return mx.received[0] if mx.received else None


async def _nth(mx: RemoteMx, index: int) -> Any:
    return mx.received[index] if len(mx.received) > index else None


async def test_a_bounce_passed_on_is_queued_once_however_often_its_delivery_is_tried(
    rig: tuple[SmtpRig, RemoteMx],
) -> None:
    smtp, _mx = rig
    state = smtp.app.state
    await state.smtp_deliverer.stop()  # this test plays the deliverer
    srs_address = srs_of(state).forward(CAROL)
    bounce = (
        f"From: MAILER-DAEMON@remote.example.net\r\nTo: {srs_address}\r\n"
        "Subject: Undelivered\r\n\r\nno such user\r\n"
    ).encode()
    assert await in_thread(_send, smtp.mx_port, "", [srs_address], bounce) == {}
    async with state.sessionmaker() as session:
        [accepted] = await intake_db.claim(session, limit=1, lease_seconds=60, max_attempts=5)
        await session.commit()
    # Tried, then tried again (its first try crashed before the intake row was ended).
    for _ in range(2):
        assert await delivery_of(state, accepted) is None  # nothing left to file here
    async with state.sessionmaker() as session:
        queued = (await session.scalars(select(OutboundTask.recipients))).all()
    assert queued == [[CAROL]]
