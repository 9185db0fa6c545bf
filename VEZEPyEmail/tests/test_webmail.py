"""Webmail view logic without a browser: the message frame, highlighting, image choices."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from VEZEPyCore.auth.principal import Principal
from VEZEPyEmail.db.models import Mailbox
from VEZEPyEmail.services.delivery.local import deliver_local
from VEZEPyEmail.services.messages import detail
from VEZEPyEmail.services.webmail import frame, images, listing, sidebar, text
from VEZEPyEmail.tests.conftest import provision

ALICE = "alice@vezeuniqverse.com"
BOB = "bob@vezeuniqverse.com"


def test_frame_blocks_remote_images_until_allowed() -> None:
    html = (
        '<p>Hi</p><img src="https://t.example/p.gif" alt="pixel">'
        '<img src="//t.example/q.gif"><img src="data:image/png;base64,AAAA">'
        '<img src="data:image/svg+xml,&lt;svg/&gt;"><a href="data:text/html,x">d</a>'
        '<a href="https://example.org/">ok</a>'
    )
    blocked, count = frame.clean_body(html, images_allowed=False)
    assert count == 2
    assert "t.example" not in blocked
    assert 'src="data:image/png;base64,AAAA"' in blocked
    assert "svg" not in blocked and "data:text" not in blocked
    assert 'target="_blank"' in blocked and "noreferrer" in blocked
    allowed, count = frame.clean_body(html, images_allowed=True)
    assert count == 0
    assert 'src="https://t.example/p.gif"' in allowed and 'src="//t.example/q.gif"' in allowed


def test_frame_document_policy_forbids_scripts_and_fetches() -> None:
    document, _ = frame.document("<p onclick='x()'>a</p><script>x()</script>", images_allowed=False)
    policy = document.content_security_policy
    assert "default-src 'none'" in policy and "img-src data:;" in policy
    assert "script-src" not in policy  # falls back to default-src 'none'
    assert policy.endswith("sandbox " + frame.IFRAME_SANDBOX)
    assert "<script" not in document.html and "onclick" not in document.html
    nonce = policy.split("'nonce-")[1].split("'")[0]
    assert f'<style nonce="{nonce}">' in document.html
    other, _ = frame.document("<p>a</p>", images_allowed=True)
    assert "img-src data: https: http:" in other.content_security_policy
    assert nonce not in other.content_security_policy  # a fresh nonce per response


def test_highlight_and_linkify_escape_everything() -> None:
    terms = text.search_terms('from:carol "big report" subject:<b> is:unread in:all')
    assert terms == ["report", "carol", "big", "<b>"]
    marked = str(text.highlight("<b>Big</b> REPORT for carol", terms))
    assert marked == (
        "<mark>&lt;b&gt;</mark><mark>Big</mark>&lt;/b&gt; <mark>REPORT</mark> for "
        "<mark>carol</mark>"
    )
    assert text.search_terms("before:notadate") == []
    linked = str(text.linkify('go https://x.org/a?b=1&c=2. or "javascript:alert(1)" <i>'))
    assert '<a href="https://x.org/a?b=1&amp;c=2"' in linked
    assert "javascript:alert(1)" in linked and "<i>" not in linked and "&lt;i&gt;" in linked
    body = str(text.plain_body("Yes.\n> <b>quoted</b> https://x.org\nend"))
    assert body.split("\n")[1] == (
        '<span class="quoted">&gt; &lt;b&gt;quoted&lt;/b&gt; <a href="https://x.org" '
        'target="_blank" rel="noopener noreferrer nofollow">https://x.org</a></span>'
    )


def test_short_dates_and_sizes() -> None:
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert text.short_date(datetime(2026, 11, 27, 8, 5, tzinfo=UTC), now) == "08:05"
    assert text.short_date(datetime(2026, 3, 2, 8, 5, tzinfo=UTC), now) == "2 Mar"
    assert text.short_date(datetime(2024, 3, 2, 8, 5, tzinfo=UTC), now) == "2024-03-02"
    assert [text.human_size(n) for n in (8, 2048, 3 * 1024 * 1024)] == ["8 B", "2 KB", "3.0 MB"]


async def test_image_choices_per_message_and_per_sender(
    email_app: FastAPI,
    admin_headers: dict[str, str],
    running: Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]],
) -> None:
    async with running(email_app) as client:
        await provision(client, admin_headers, ALICE)
        await provision(client, admin_headers, BOB)
        raw = (
            b"From: Shop <news@shop.example>\r\nTo: alice@vezeuniqverse.com\r\n"
            b"Subject: %s\r\n\r\nx\r\n"
        )
        first, second = [
            (
                await deliver_local(
                    email_app.state,
                    raw=raw % subject,
                    envelope_from="news@shop.example",
                    recipients=[ALICE],
                )
            )[0].id
            for subject in (b"One", b"Two")
        ]
        async with email_app.state.sessionmaker() as session:
            alice = await session.scalar(select(Mailbox.id).where(Mailbox.address == ALICE))
            bob = await session.scalar(select(Mailbox.id).where(Mailbox.address == BOB))
            assert alice is not None and bob is not None
            connection = await session.connection()
            row = await listing.get_row(connection, mailbox_id=alice, message_id=first)
            assert row.sender_address == "news@shop.example" and row.sender_name == "Shop"

            async def allowed(mailbox: int, message: int) -> bool:
                return await images.images_allowed(
                    await session.connection(),
                    mailbox_id=mailbox,
                    message_id=message,
                    sender="news@shop.example",
                )

            assert not await allowed(alice, first)
            await images.allow_images(
                session,
                mailbox_id=alice,
                scope="message",
                message_id=first,
                sender=row.sender_address,
            )
            await session.commit()
            assert await allowed(alice, first) and not await allowed(alice, second)
            for _ in range(2):  # idempotent
                await images.allow_images(
                    session,
                    mailbox_id=alice,
                    scope="sender",
                    message_id=first,
                    sender=row.sender_address,
                )
                await session.commit()
            assert await allowed(alice, second)
            assert not await allowed(bob, second)  # one person's choice is theirs alone
            with pytest.raises(Exception, match="no such message"):
                await listing.get_row(await session.connection(), mailbox_id=bob, message_id=first)


@pytest.mark.parametrize("repeat", [1, 20_000])  # inline, and off the loop (> 32 KiB)
async def test_view_source_is_every_byte_as_text(
    email_app: FastAPI,
    admin_headers: dict[str, str],
    running: Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]],
    repeat: int,
) -> None:
    async with running(email_app) as client:
        await provision(client, admin_headers, ALICE)
        body = b"caf\xe9 na\xc3\xafve " * repeat  # a Latin-1 byte among UTF-8
        raw = b"From: x@example.org\r\nTo: " + ALICE.encode() + b"\r\nSubject: Old\r\n\r\n"
        [stored] = await deliver_local(
            email_app.state, raw=raw + body, envelope_from="x@example.org", recipients=[ALICE]
        )
        alice = Principal(subject="alice", scopes=frozenset({"email.read"}), address=ALICE)
        async with email_app.state.engine.connect() as connection:
            owned = await detail.load_owned(connection, message_id=stored.id, principal=alice)
        text = (await detail.read_source_text(email_app.state.blobs, owned)).decode("utf-8")
    assert "Subject: Old\r\n" in text
    assert text.endswith("caf\ufffd na\u00efve " * repeat)


async def test_list_pages_by_cursor_and_search(
    email_app: FastAPI,
    admin_headers: dict[str, str],
    running: Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]],
) -> None:
    async with running(email_app) as client:
        await provision(client, admin_headers, ALICE)
        for number in range(5):
            raw = (
                f"From: c@example.org\r\nTo: {ALICE}\r\nSubject: Item {number}\r\n"
                f"Message-ID: <item{number}@example.org>\r\n\r\nbody {number}\r\n"
            ).encode()
            await deliver_local(
                email_app.state, raw=raw, envelope_from="c@example.org", recipients=[ALICE]
            )
        async with email_app.state.engine.connect() as connection:
            alice = await connection.scalar(select(Mailbox.id).where(Mailbox.address == ALICE))
            assert alice is not None
            seen: list[str] = []
            cursor = None
            while True:
                page = await listing.list_rows(
                    connection, mailbox_id=alice, folder="INBOX", cursor=cursor, limit=2
                )
                seen += [row.subject for row in page.rows]
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            assert seen[:5] == [f"Item {n}" for n in (4, 3, 2, 1, 0)] and len(seen) == 6
            found = await listing.list_rows(
                connection, mailbox_id=alice, folder="Archive", query="in:INBOX subject:Item"
            )
            assert len(found.rows) == 5
            folders = await sidebar.sidebar_folders(connection, mailbox_id=alice)
            assert [f.name for f in folders][:6] == [
                "INBOX",
                "Sent",
                "Drafts",
                "Junk",
                "Trash",
                "Archive",
            ]
            assert (folders[0].unread, folders[0].badge) == (6, 6)  # five items and the welcome
            assert all(f.badge == 0 for f in folders[1:])
