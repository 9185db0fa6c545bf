"""Sieve at local delivery, on the real store: copies, flags, junk, failures, redirect, vacation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, select, update

from VEZEPyEmail.app.main import create_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.db.models import Mailbox, Message, OutboundMessage, OutboundTask
from VEZEPyEmail.db.sieve import SieveScript, VacationReply
from VEZEPyEmail.services.delivery import local
from VEZEPyEmail.services.delivery.local import deliver_local
from VEZEPyEmail.services.outbound.queue import enqueue_outbound
from VEZEPyEmail.services.srs.service import srs_of
from VEZEPyEmail.tests.conftest import provision
from VEZEPyEmail.tests.smtp_support import file_local_queued

ALICE = "alice@vezeuniqverse.com"
BOB = "bob@vezeuniqverse.com"
REQUIRE = 'require ["fileinto", "imap4flags", "vacation"];\n'
Running = Callable[[FastAPI], Any]


@dataclass
class Rig:
    app: FastAPI
    client: httpx.AsyncClient


@pytest.fixture
async def rig(
    email_settings: EmailSettings, running: Running, admin_headers: dict[str, str]
) -> AsyncIterator[Rig]:
    # No outbound worker running: redirects and replies stay in the queue to be looked at,
    # until a test sends them on (`send_on`).
    app = create_app(email_settings.model_copy(update={"outbound_worker": False}))
    async with running(app) as client:
        await provision(client, admin_headers, ALICE)
        await provision(client, admin_headers, BOB)
        async with app.state.engine.begin() as connection:  # drop the welcome mails
            await connection.execute(delete(Message))
        yield Rig(app, client)


@pytest.fixture
def app(rig: Rig) -> FastAPI:
    return rig.app


@pytest.fixture
def client(rig: Rig) -> httpx.AsyncClient:
    return rig.client


async def set_rules(
    client: httpx.AsyncClient, mint: Callable[..., str], user: str, script: str
) -> None:
    response = await client.put(
        "/api/rules",
        json={"script": REQUIRE + script},
        headers={"Authorization": f"Bearer {mint(user)}"},
    )
    assert response.status_code == 200, response.text


def mail(
    subject: str = "Hello", *, sender: str = "carol@example.org", to: str = ALICE, extra: str = ""
) -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@example.org>\r\n{extra}\r\nHi there.\r\n"
    ).encode()


async def deliver(
    app: FastAPI, raw: bytes, *, sender: str = "carol@example.org", **kw: Any
) -> list[Any]:
    return list(
        await deliver_local(
            app.state, raw=raw, envelope_from=sender, recipients=kw.pop("to", [ALICE]), **kw
        )
    )


async def send_on(app: FastAPI) -> int:
    """Run the outbound queue until nothing is due (local targets are filed by it); how many
    it ran."""
    ran = 0
    while count := await app.state.outbound_worker.process_due():
        ran += count
    return ran


async def rows(app: FastAPI, address: str) -> list[dict[str, Any]]:
    async with app.state.engine.connect() as connection:
        result = await connection.execute(
            select(Message.__table__)
            .join(Mailbox, Mailbox.id == Message.mailbox_id)
            .where(Mailbox.address == address)
            .order_by(Message.id)
        )
        return [dict(row) for row in result.mappings()]


async def last_error(app: FastAPI, address: str) -> str | None:
    async with app.state.engine.connect() as connection:
        error = await connection.scalar(
            select(SieveScript.last_error)
            .join(Mailbox, Mailbox.id == SieveScript.mailbox_id)
            .where(Mailbox.address == address)
        )
    return str(error) if error is not None else None


async def test_fileinto_creates_the_folder_and_applies_flags_and_keywords(
    app: FastAPI, client: httpx.AsyncClient, mint: Callable[..., str]
) -> None:
    await set_rules(
        client,
        mint,
        ALICE,
        'if header :contains "subject" "invoice" {\n'
        '  fileinto "Archive"; fileinto "Accounts/2026"; addflag ["\\\\Flagged", "money"];\n}',
    )
    delivered = await deliver(app, mail("Your invoice"))
    assert [item.folder for item in delivered] == ["Archive", "Accounts/2026"]
    assert len(app.state.sieve_programs) == 1  # compiled once, kept for the next message
    first, second = await rows(app, ALICE)
    assert first["folder"] == "Archive" and second["folder"] == "Accounts/2026"
    assert first["flagged"] and second["flagged"] and not first["seen"]
    assert first["labels"] == ["money"]
    # One row keeps the Message-ID (the duplicate guard); a retry stores nothing new.
    assert first["message_id_header"] == "<Your.invoice@example.org>"
    assert second["message_id_header"] is None
    await deliver(app, mail("Your invoice"))
    assert len(await rows(app, ALICE)) == 2
    folders = (
        await client.get("/api/folders", headers={"Authorization": f"Bearer {mint(ALICE)}"})
    ).json()["folders"]
    assert {"Archive", "Accounts/2026"} <= {folder["name"] for folder in folders}
    # Other mail still lands in the INBOX (implicit keep); bob has no rules at all.
    await deliver(app, mail("Lunch?"), to=[ALICE, BOB])
    assert (await rows(app, ALICE))[-1]["folder"] == "INBOX"
    assert [row["folder"] for row in await rows(app, BOB)] == ["INBOX"]


async def test_discard_stores_nothing_and_the_sent_copy_never_runs_rules(
    app: FastAPI, client: httpx.AsyncClient, mint: Callable[..., str]
) -> None:
    await set_rules(client, mint, ALICE, "discard;")
    assert await deliver(app, mail("Spam offer")) == []
    assert await rows(app, ALICE) == []
    await deliver(app, mail("Sent by alice", sender=ALICE), folder="Sent", seen=True)
    assert [row["folder"] for row in await rows(app, ALICE)] == ["Sent"]


async def test_junk_stays_in_junk_unless_a_rule_files_it(
    app: FastAPI, client: httpx.AsyncClient, mint: Callable[..., str]
) -> None:
    await set_rules(
        client,
        mint,
        ALICE,
        'if header :contains "subject" "newsletter" { fileinto "News"; }\n'
        'redirect "alice.elsewhere@example.org";\n'
        'vacation "Away.";\n',
    )
    await deliver(app, mail("Cheap meds"), folder="Junk", spam_score=7.0)
    await deliver(app, mail("The newsletter"), folder="Junk", spam_score=6.0)
    junk, news = await rows(app, ALICE)
    assert junk["folder"] == "Junk" and junk["spam_score"] == 7.0
    assert news["folder"] == "News"
    # Junk is neither forwarded nor answered.
    async with app.state.engine.connect() as connection:
        assert await connection.scalar(select(OutboundTask.id)) is None
        assert await connection.scalar(select(VacationReply.id)) is None
    assert "junk" in (await last_error(app, ALICE) or "")


async def test_a_broken_script_keeps_the_message_and_says_why(
    app: FastAPI, client: httpx.AsyncClient, mint: Callable[..., str]
) -> None:
    await set_rules(client, mint, ALICE, "discard;")
    async with app.state.engine.begin() as connection:  # as if written by an older version
        await connection.execute(update(SieveScript).values(script="if nonsense {"))
    delivered = await deliver(app, mail("Still here"))
    assert [item.folder for item in delivered] == ["INBOX"]
    assert [row["subject"] for row in await rows(app, ALICE)] == ["Still here"]
    rules = (
        await client.get("/api/rules", headers={"Authorization": f"Bearer {mint(ALICE)}"})
    ).json()
    assert rules["last_error"].startswith("the rules could not run (SieveError: line 1")
    assert rules["last_error_at"] is not None


async def test_local_redirect_marks_the_copy_and_a_loop_ends_in_a_keep(
    app: FastAPI, client: httpx.AsyncClient, mint: Callable[..., str]
) -> None:
    await set_rules(client, mint, ALICE, f'redirect "{BOB}";')
    await deliver(app, mail("Forward me"))
    assert await rows(app, ALICE) == [] and await rows(app, BOB) == []  # queued, not yet sent
    assert await send_on(app) == 1
    [copy] = await rows(app, BOB)
    raw = await app.state.blobs.get(copy["blob_key"])
    assert raw.startswith(b"Return-Path: <carol@example.org>\r\nDelivered-To: " + ALICE.encode())
    assert raw.count(b"Return-Path:") == 1
    # bob now sends everything back: the message stops at alice, who keeps it.
    await set_rules(client, mint, BOB, f'redirect "{ALICE}";')
    await deliver(app, mail("Ping pong"))
    assert await send_on(app) == 2  # alice -> bob -> alice
    [kept] = await rows(app, ALICE)
    assert kept["subject"] == "Ping pong" and kept["folder"] == "INBOX"
    stored = await app.state.blobs.get(kept["blob_key"])
    assert b"Delivered-To: bob@" in stored and b"Delivered-To: alice@" in stored
    assert "already passed this mailbox" in (await last_error(app, ALICE) or "")


async def test_redirect_to_a_missing_local_mailbox_falls_back_to_keep(
    app: FastAPI, client: httpx.AsyncClient, mint: Callable[..., str]
) -> None:
    await set_rules(client, mint, ALICE, 'redirect "ghost@vezeuniqverse.com";')
    await deliver(app, mail("Nobody there"))
    assert [row["subject"] for row in await rows(app, ALICE)] == ["Nobody there"]
    assert "redirect to ghost@vezeuniqverse.com failed" in (await last_error(app, ALICE) or "")


async def test_remote_redirect_is_queued_without_our_return_path(
    app: FastAPI, client: httpx.AsyncClient, mint: Callable[..., str]
) -> None:
    await set_rules(client, mint, ALICE, 'redirect "alice@example.net"; keep;')
    await deliver(
        app,
        mail("Copy me"),
        prepend_headers=[("Return-Path", "<carol@example.org>"), ("Received", "from x by y")],
    )
    assert [row["folder"] for row in await rows(app, ALICE)] == ["INBOX"]  # keep: also here
    async with app.state.engine.connect() as connection:
        task = (await connection.execute(select(OutboundTask.__table__))).mappings().one()
        blob_key = await connection.scalar(select(OutboundMessage.blob_key))
    assert task["recipients"] == ["alice@example.net"]
    # Sent on from our domain (SRS), so the destination's SPF check passes; a bounce to it
    # reverses to the original sender.
    assert task["envelope_from"].startswith("SRS0=")
    assert srs_of(app.state).reverse(task["envelope_from"]) == "carol@example.org"
    raw = await app.state.blobs.get(blob_key)
    assert raw.startswith(b"Delivered-To: alice@vezeuniqverse.com\r\nReceived: from x by y\r\n")
    assert b"Return-Path" not in raw


async def test_vacation_answers_once_per_sender_and_never_lists_or_robots(
    app: FastAPI, client: httpx.AsyncClient, mint: Callable[..., str]
) -> None:
    await set_rules(
        client, mint, ALICE, 'vacation :days 7 :subject "Out of office" "Back on Monday.";'
    )
    await deliver(app, mail("First", sender=BOB), sender=BOB)
    await deliver(app, mail("Second", sender=BOB), sender=BOB)
    await deliver(app, mail("List", sender=BOB, extra="List-Id: <x.example.org>\r\n"), sender=BOB)
    await deliver(
        app, mail("Robot", sender=BOB, extra="Auto-Submitted: auto-generated\r\n"), sender=BOB
    )
    assert len(await rows(app, ALICE)) == 4  # vacation never cancels the keep
    assert await send_on(app) == 1
    [reply] = await rows(app, BOB)
    assert reply["subject"] == "Out of office" and reply["from_addr"] == ALICE
    assert reply["in_reply_to"] == "<First@example.org>" and reply["envelope_from"] == ""
    raw = await app.state.blobs.get(reply["blob_key"])
    assert b"Auto-Submitted: auto-replied" in raw and b"Back on Monday." in raw
    # Once :days have passed, the same sender is answered again (once).
    async with app.state.engine.begin() as connection:
        await connection.execute(
            update(VacationReply).values(sent_at=datetime.now(UTC) - timedelta(days=8))
        )
    await deliver(app, mail("Third", sender=BOB), sender=BOB)
    await deliver(app, mail("Fourth", sender=BOB), sender=BOB)
    assert await send_on(app) == 1
    assert [row["subject"] for row in await rows(app, BOB)] == ["Out of office"] * 2
    # A remote sender's reply goes out through the queue with the null reverse-path.
    await deliver(app, mail("From afar"))
    async with app.state.engine.connect() as connection:
        task = (
            (
                await connection.execute(
                    select(OutboundTask.__table__).where(OutboundTask.status == "queued")
                )
            )
            .mappings()
            .one()
        )
    assert task["recipients"] == ["carol@example.org"] and task["envelope_from"] == ""


async def test_keywords_from_several_addflag_are_capped_at_the_label_limit(
    app: FastAPI, client: httpx.AsyncClient, mint: Callable[..., str]
) -> None:
    first = " ".join(f"a{index}" for index in range(15))
    second = " ".join(f"b{index}" for index in range(15))
    await set_rules(client, mint, ALICE, f'addflag "{first}"; addflag "{second}";')
    await deliver(app, mail("Many labels"))
    [row] = await rows(app, ALICE)
    assert len(row["labels"]) == 20 and row["labels"][:2] == ["a0", "a1"]


async def test_redirects_and_replies_commit_with_the_delivery(
    app: FastAPI, client: httpx.AsyncClient, mint: Callable[..., str]
) -> None:
    # A crash right after the delivery's commit: nothing after it runs. The redirected
    # message, kept nowhere else, and the vacation reply must already be queued.
    await set_rules(
        client,
        mint,
        ALICE,
        f'redirect "{BOB}"; redirect "alice@example.net";\nvacation :subject "Away" "Later.";',
    )
    prepared = await local.prepare_delivery(
        app.state, raw=mail("Crash after commit"), envelope_from=BOB, recipients=[ALICE]
    )
    assert prepared is not None
    async with app.state.sessionmaker() as session:
        await local.file_delivery(session, app.state, prepared)
        await session.commit()  # and no finish_delivery: the process is gone
    async with app.state.engine.connect() as connection:
        queued = (
            await connection.execute(
                select(OutboundTask.recipients, OutboundTask.envelope_from).order_by(
                    OutboundTask.id
                )
            )
        ).all()
    assert [(recipients[0], sender) for recipients, sender in queued] == [
        (BOB, BOB),
        ("alice@example.net", BOB),  # SRS leaves a sender of our own domain as it is
        (BOB, ""),  # the reply, from the null reverse-path
    ]
    assert await file_local_queued(app) == 2  # the remote one waits for its route
    subjects = sorted(row["subject"] for row in await rows(app, BOB))
    assert subjects == ["Away", "Crash after commit"] and await rows(app, ALICE) == []


async def test_a_queued_message_for_no_local_mailbox_fails_and_bounces(app: FastAPI) -> None:
    await enqueue_outbound(
        app.state,
        raw=mail("Nobody home"),
        envelope_from="carol@example.org",
        recipients=["ghost@vezeuniqverse.com"],
    )
    assert await app.state.outbound_worker.process_due() == 1
    async with app.state.engine.connect() as connection:
        tasks = (
            await connection.execute(
                select(
                    OutboundTask.recipients, OutboundTask.status, OutboundTask.last_error
                ).order_by(OutboundTask.id)
            )
        ).all()
    [(_, status, error), (dsn_to, dsn_status, _)] = tasks
    assert status == "failed" and "no mailbox ghost@vezeuniqverse.com" in (error or "")
    assert dsn_to == ["carol@example.org"] and dsn_status == "queued"  # the DSN, to the sender
