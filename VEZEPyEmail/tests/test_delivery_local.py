"""Local delivery: durable, byte-exact storage and one row per local recipient."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from VEZEPyCore.testing import next_event, sse_events
from VEZEPyEmail.app.main import create_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.db.models import Folder, Mailbox, Message
from VEZEPyEmail.services.delivery.local import (
    DeliveryRefused,
    MessageTooLarge,
    deliver_local,
    header_block,
    local_mailbox_exists,
    summary_carries_over,
)
from VEZEPyEmail.services.messages.mime import summarise
from VEZEPyEmail.services.store.blobs import BlobStore
from VEZEPyEmail.tests.conftest import provision

ALICE = "alice@vezeuniqverse.com"
BOB = "bob@vezeuniqverse.com"
TRACE = [
    ("Return-Path", "<sender@example.org>"),
    (
        "Received",
        "from mx.example.org by mail.vezeuniqverse.com;\r\n\tFri, 27 Nov 2026 05:00 +0000",
    ),
]
SIMPLE = (
    b"From: Sender <sender@example.org>\r\nTo: alice@vezeuniqverse.com\r\n"
    b"Subject: Hello there\r\nMessage-ID: <one@example.org>\r\n"
    b"Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n\r\nBody line one.\r\n"
)


@pytest.fixture
async def mail_app(
    email_app: FastAPI,
    admin_headers: dict[str, str],
    running: Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]],
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with running(email_app) as client:
        await provision(client, admin_headers, ALICE)
        await provision(client, admin_headers, BOB)
        yield email_app, client


async def _rows(app: FastAPI, address: str = ALICE) -> list[Message]:
    async with app.state.sessionmaker() as session:
        result = await session.execute(
            select(Message)
            .join(Mailbox, Mailbox.id == Message.mailbox_id)
            .where(Mailbox.address == address, Message.blob_key.is_not(None))
            .order_by(Message.id)
        )
        return list(result.scalars())


async def test_blob_is_byte_exact_after_prepended_headers(
    mail_app: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, _client = mail_app
    delivered = await deliver_local(
        app.state,
        raw=SIMPLE,
        envelope_from="sender@example.org",
        recipients=[ALICE],
        prepend_headers=TRACE,
    )
    assert len(delivered) == 1 and not delivered[0].duplicate
    # The file is on disk by the time deliver_local returns (the SMTP 250 follows).
    blobs: BlobStore = app.state.blobs
    path = blobs.path_for(delivered[0].blob_key)
    expected = (
        b"Return-Path: <sender@example.org>\r\n"
        b"Received: from mx.example.org by mail.vezeuniqverse.com;\r\n"
        b"\tFri, 27 Nov 2026 05:00 +0000\r\n" + SIMPLE
    )
    assert path.read_bytes() == expected
    assert await blobs.get(delivered[0].blob_key) == expected
    (row,) = await _rows(app)
    assert row.subject == "Hello there" and row.from_addr == "Sender <sender@example.org>"
    assert row.message_id_header == "<one@example.org>" == row.thread_id
    assert row.size == len(expected) and row.envelope_from == "sender@example.org"
    assert row.snippet == "Body line one." and row.folder == "INBOX" and row.seen is False


async def test_duplicate_message_id_is_stored_once_per_mailbox(
    mail_app: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, _client = mail_app
    first = await deliver_local(app.state, raw=SIMPLE, envelope_from="", recipients=[ALICE])
    second = await deliver_local(
        app.state, raw=SIMPLE, envelope_from="", recipients=[ALICE, BOB, "nobody@vezeuniqverse.com"]
    )
    assert [d.duplicate for d in second] == [True, False]
    assert second[0].id == first[0].id
    assert len(await _rows(app)) == 1 and len(await _rows(app, BOB)) == 1


async def test_concurrent_duplicates_are_stored_once(
    mail_app: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, _client = mail_app
    results = await asyncio.gather(
        *(
            deliver_local(app.state, raw=SIMPLE, envelope_from="", recipients=[ALICE])
            for _ in range(5)
        ),
        return_exceptions=True,
    )
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert len(await _rows(app)) == 1


MALFORMED = {
    "broken boundary": (
        b"From: a@example.org\r\nSubject: broken\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="XYZ"\r\n\r\n--ABC\r\nContent-Type: text/plain'
        b"\r\n\r\nlost part\r\n--XYZ"
    ),
    "bad base64": (
        b"From: a@example.org\r\nSubject: b64\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n!!!not*base64===\x80\r\n"
    ),
    "bad charset": (
        b"From: a@example.org\r\nSubject: =?x-nonsense?q?caf=E9?=\r\n"
        b"Content-Type: text/plain; charset=x-nonsense\r\n\r\ncaf\xe9 \xff\xfe\r\n"
    ),
    "nul bytes": b"From: a@\x00example.org\r\nSubject: n\x00ul\r\n\r\nbody\x00with nul\r\n",
    "huge header": b"From: a@example.org\r\nSubject: " + b"h" * 100_000 + b"\r\n\r\nbody\r\n",
    "no headers": b"just some bytes without any header\r\nsecond line\r\n",
    "bad date and addresses": (
        b"From: <<<@@@>>>\r\nTo: ,,,;;;<\r\nDate: 99 Foo 99999 99:99\r\n"
        b"Message-ID: <unterminated\r\nReferences: <>\r\n\r\nx\r\n"
    ),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
async def test_malformed_mime_is_stored_and_listed(
    name: str, mail_app: tuple[FastAPI, httpx.AsyncClient], mint: Callable[..., str]
) -> None:
    app, client = mail_app
    raw = MALFORMED[name]
    (delivered,) = await deliver_local(app.state, raw=raw, envelope_from="", recipients=[ALICE])
    assert await app.state.blobs.get(delivered.blob_key) == raw
    listing = await client.get(
        "/api/messages", params={"user": ALICE}, headers={"Authorization": f"Bearer {mint(ALICE)}"}
    )
    assert listing.status_code == 200
    assert delivered.id in [m["id"] for m in listing.json()["messages"]]
    (row,) = await _rows(app)
    assert "\x00" not in row.subject + row.body_text + row.from_addr
    assert len(row.subject) <= 998


async def test_refusals_are_clear(mail_app: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, _client = mail_app
    with pytest.raises(DeliveryRefused):
        await deliver_local(
            app.state,
            raw=SIMPLE,
            envelope_from="",
            recipients=[ALICE],
            prepend_headers=[("Bad Name", "x")],
        )
    limit = app.state.settings.max_message_bytes
    with pytest.raises(MessageTooLarge):
        await deliver_local(app.state, raw=b"x" * (limit + 1), envelope_from="", recipients=[ALICE])
    assert await _rows(app) == []


async def test_header_values_cannot_inject_lines(
    mail_app: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, _client = mail_app
    (delivered,) = await deliver_local(
        app.state,
        raw=SIMPLE,
        envelope_from="",
        recipients=[ALICE],
        prepend_headers=[
            ("Received", "from evil\r\nBcc: injected\nX: y\r\n\tby us\r\n"),
            ("Authentication-Results", "mx; spf=pass\x00"),
        ],
    )
    stored = await app.state.blobs.get(delivered.blob_key)
    assert stored == (
        b"Received: from evil\r\n Bcc: injected X: y\r\n\tby us\r\n"
        b"Authentication-Results: mx; spf=pass \r\n" + SIMPLE
    )


async def test_local_mailbox_exists_and_folders(
    mail_app: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, _client = mail_app
    assert await local_mailbox_exists(app.state, "Alice@VezeUniQVerse.com")
    assert not await local_mailbox_exists(app.state, "carol@vezeuniqverse.com")
    await deliver_local(
        app.state, raw=SIMPLE, envelope_from="", recipients=[ALICE], folder="Lists", seen=True
    )
    async with app.state.sessionmaker() as session:
        names = set(
            await session.scalars(select(Folder.name).join(Mailbox).where(Mailbox.address == ALICE))
        )
        count = await session.scalar(select(func.count()).select_from(Message).where(Message.seen))
    assert names == {"INBOX", "Sent", "Drafts", "Junk", "Trash", "Archive", "Lists"}
    nobody = await deliver_local(
        app.state, raw=b"x", envelope_from="", recipients=["carol@vezeuniqverse.com"]
    )
    assert nobody == [] and not app.state.blobs.exists(hashlib.sha256(b"x").hexdigest())
    assert count == 1


async def test_threads_and_attachments_are_recorded(
    mail_app: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, _client = mail_app
    raw = (
        b"From: a@example.org\r\nTo: alice@vezeuniqverse.com, Bob <bob@vezeuniqverse.com>\r\n"
        b"Cc: c@example.org\r\nSubject: Re: plan\r\nMessage-ID: <3@x>\r\nIn-Reply-To: <2@x>\r\n"
        b"References: <1@x> <2@x>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/html\r\n\r\n<p>Hi <b>there</b><script>x()</script></p>\r\n--b\r\n"
        b'Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="a.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n"
    )
    await deliver_local(app.state, raw=raw, envelope_from="", recipients=[ALICE])
    (row,) = await _rows(app)
    assert row.thread_id == "<1@x>" and row.in_reply_to == "<2@x>"
    assert row.references_header == "<1@x> <2@x>"
    assert row.to_addrs == "alice@vezeuniqverse.com, bob@vezeuniqverse.com"
    assert row.cc_addrs == "c@example.org" and row.has_attachments
    assert row.snippet == "Hi there"


async def test_delivery_reaches_an_sse_client(
    email_settings: EmailSettings, mint: Callable[..., str], admin_headers: dict[str, str]
) -> None:
    from VEZEPyCore.testing import serve_app

    app = create_app(email_settings)
    async with (
        serve_app(app) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as client,
    ):
        await provision(client, admin_headers, ALICE)
        async with client.stream(
            "GET", "/api/events", params={"access_token": mint(ALICE)}
        ) as response:
            events = sse_events(response)
            assert (await next_event(events))[0] == "ready"
            (delivered,) = await deliver_local(
                app.state, raw=SIMPLE, envelope_from="", recipients=[ALICE]
            )
            name, payload = await next_event(events)
    assert name == "message.created"
    assert payload["id"] == delivered.id and payload["subject"] == "Hello there"
    assert payload["from"] == "Sender <sender@example.org>" and payload["folder"] == "INBOX"


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    raw=st.binary(max_size=4096)
    | st.text(max_size=2000).map(lambda t: t.encode("utf-8", "surrogatepass")),
    value=st.text(max_size=200),
)
async def test_any_bytes_are_stored_byte_exact_or_refused(
    mail_app: tuple[FastAPI, httpx.AsyncClient], raw: bytes, value: str
) -> None:
    app, _client = mail_app
    try:
        delivered = await deliver_local(
            app.state,
            raw=raw,
            envelope_from="x@example.org",
            recipients=[ALICE],
            prepend_headers=[("Received", value)],
        )
    except DeliveryRefused:
        return
    assert len(delivered) == 1
    stored = await app.state.blobs.get(delivered[0].blob_key)
    assert stored.startswith(b"Received: ") and stored.endswith(raw)
    head = stored[: len(stored) - len(raw)]
    # the prepended block is one field: every further line is a fold
    assert all(line[:1] in (b" ", b"\t") for line in head.split(b"\r\n")[1:-1])
    assert head.endswith(b"\r\n") and b"\x00" not in head


async def test_a_mailbox_created_after_a_miss_receives_mail_at_once(
    mail_app: tuple[FastAPI, httpx.AsyncClient], admin_headers: dict[str, str]
) -> None:
    # The directory remembers addresses it found, never one it did not find.
    app, client = mail_app
    carol = "carol@vezeuniqverse.com"
    assert not await local_mailbox_exists(app.state, carol)
    await provision(client, admin_headers, carol)
    assert await local_mailbox_exists(app.state, "Carol@VezeUniQVerse.com")
    delivered = await deliver_local(app.state, raw=SIMPLE, envelope_from="", recipients=[carol])
    assert [copy.address for copy in delivered] == [carol]


MX_TRACE = [
    ("Return-Path", "<frank@sender.example>"),
    ("Authentication-Results", "mx.test; spf=none smtp.mailfrom=sender.example; dkim=none"),
    ("Received", "from helo ([127.0.0.1])\r\n\tby mx.test\r\n\twith ESMTP id ABC; Fri, 27 Nov"),
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=st.from_regex(rb"\A[!-9;-~]{1,20}:[ -~]{0,40}\r?\n", fullmatch=True),
    rest=st.binary(max_size=600)
    | st.lists(
        st.sampled_from(
            [
                b"Subject: =?utf-8?q?caf=C3=A9?=\r\n",
                b'From: "F" <f@x.example>\r\n',
                b"To: a@b.example,\r\n c@d.example\r\n",
                b"Message-ID: <m@x>\r\n",
                b"References: <a@x> <b@x>\r\n",
                b" folded\r\n",
                b"\r\n",
                b"body line\r\n",
                b"Content-Type: multipart/mixed; boundary=b\r\n",
                b"--b\r\n",
                b"--b--\r\n",
            ]
        ),
        max_size=30,
    ).map(b"".join),
)
def test_the_summary_of_the_message_stands_for_the_stored_bytes(first: bytes, rest: bytes) -> None:
    # The MX summarises the message in its analysis thread, before the trace fields exist;
    # that summary is used for the stored bytes whenever summary_carries_over says so.
    raw = first + rest
    assert summary_carries_over(raw)
    assert summarise(raw) == summarise(header_block(MX_TRACE) + raw)


def test_a_message_that_opens_without_a_field_is_summarised_as_stored() -> None:
    assert not summary_carries_over(b" continued\r\nSubject: x\r\n\r\nbody")
    assert not summary_carries_over(b"no header block at all")
    assert not summary_carries_over(b"From sender Fri Nov 27\r\nSubject: x\r\n\r\nbody")
    assert summary_carries_over(b"Subject: x\r\n\r\nbody")
