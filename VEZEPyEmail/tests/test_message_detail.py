"""Message detail, raw download, attachments, and the 404 for other people's messages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest
from fastapi import FastAPI

from VEZEPyEmail.services.delivery.local import deliver_local
from VEZEPyEmail.services.messages.detail import safe_filename, sanitise_html
from VEZEPyEmail.tests.conftest import provision

ALICE = "alice@vezeuniqverse.com"
BOB = "bob@vezeuniqverse.com"
HOSTILE = (
    b"From: Mallory <m@example.org>\r\nTo: alice@vezeuniqverse.com\r\nCc: c@example.org\r\n"
    b"Subject: Look at this\r\nMessage-ID: <hostile@example.org>\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n--outer\r\n'
    b'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n--alt\r\n'
    b"Content-Type: text/plain; charset=utf-8\r\n\r\nPlain version\r\n--alt\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n\r\n"
    b'<p onclick="steal()">Hi<script>alert(1)</script>'
    b'<img src="https://tracker.example/p.gif" onerror="alert(2)">'
    b'<img src="data:image/png;base64,AAAA">'
    b'<a href="javascript:alert(3)">x</a><style>p{color:red}</style></p>\r\n--alt--\r\n'
    b"--outer\r\nContent-Type: text/html\r\n"
    b'Content-Disposition: attachment; filename="../../etc/pass\\"wd\r\n\t.html"\r\n\r\n'
    b"<script>evil()</script>\r\n--outer\r\n"
    b'Content-Type: image/png\r\nContent-Disposition: attachment; filename="pic.png"\r\n'
    b"Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--outer--\r\n"
)


def bearer(mint: Callable[..., str], subject: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(subject)}"}


@pytest.fixture
async def client_and_id(
    email_app: FastAPI,
    admin_headers: dict[str, str],
    running: Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]],
) -> AsyncIterator[tuple[httpx.AsyncClient, int]]:
    async with running(email_app) as client:
        await provision(client, admin_headers, ALICE)
        await provision(client, admin_headers, BOB)
        (delivered,) = await deliver_local(
            email_app.state,
            raw=HOSTILE,
            envelope_from="m@example.org",
            recipients=[ALICE],
            prepend_headers=[("Return-Path", "<m@example.org>")],
        )
        yield client, delivered.id


async def test_detail_sanitises_html_and_lists_attachments(
    client_and_id: tuple[httpx.AsyncClient, int], mint: Callable[..., str]
) -> None:
    client, message_id = client_and_id
    response = await client.get(f"/api/messages/{message_id}", headers=bearer(mint, ALICE))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["subject"] == "Look at this" and body["from_"] == "Mallory <m@example.org>"
    assert body["to"] == [ALICE] and body["cc"] == ["c@example.org"]
    assert body["text"].strip() == "Plain version"
    html = body["html"]
    for bad in ("<script", "alert(1)", "onerror", "onclick", "javascript:", "<style"):
        assert bad not in html
    assert 'data-remote-image="true"' in html and body["has_remote_images"] is True
    assert html.count("data-remote-image") == 1  # the data: image is not remote
    assert body["headers"][0] == {"name": "Return-Path", "value": "<m@example.org>"}
    assert [(a["index"], a["content_type"]) for a in body["attachments"]] == [
        (0, "text/html"),
        (1, "image/png"),
    ]
    assert "/" not in body["attachments"][0]["filename"]
    assert body["attachments"][1] == {
        "index": 1,
        "filename": "pic.png",
        "content_type": "image/png",
        "size": 8,
    }


async def test_raw_download_is_byte_exact(
    client_and_id: tuple[httpx.AsyncClient, int], mint: Callable[..., str]
) -> None:
    client, message_id = client_and_id
    response = await client.get(f"/api/messages/{message_id}/raw", headers=bearer(mint, ALICE))
    assert response.status_code == 200
    assert response.headers["content-type"] == "message/rfc822"
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.content == b"Return-Path: <m@example.org>\r\n" + HOSTILE


async def test_raw_of_a_row_without_blob_is_synthesised(
    client_and_id: tuple[httpx.AsyncClient, int], mint: Callable[..., str]
) -> None:
    client, _message_id = client_and_id
    listing = await client.get("/api/messages", params={"user": BOB}, headers=bearer(mint, BOB))
    welcome = listing.json()["messages"][0]["id"]
    raw = await client.get(f"/api/messages/{welcome}/raw", headers=bearer(mint, BOB))
    assert raw.status_code == 200 and b"Subject: Welcome to VEZE UniQVerse" in raw.content
    detail = await client.get(f"/api/messages/{welcome}", headers=bearer(mint, BOB))
    assert "your mailbox bob@vezeuniqverse.com is ready" in detail.json()["text"]


async def test_attachment_download_with_hostile_filename(
    client_and_id: tuple[httpx.AsyncClient, int], mint: Callable[..., str]
) -> None:
    client, message_id = client_and_id
    response = await client.get(
        f"/api/messages/{message_id}/attachments/0", headers=bearer(mint, ALICE)
    )
    assert response.status_code == 200
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert ".." not in disposition and "/" not in disposition.split("filename*=")[0]
    assert "\r" not in disposition and "\n" not in disposition
    # HTML is never served as HTML from our origin.
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.content.strip() == b"<script>evil()</script>"
    image = await client.get(
        f"/api/messages/{message_id}/attachments/1", headers=bearer(mint, ALICE)
    )
    assert image.headers["content-type"] == "image/png"
    assert image.content == b"\x89PNG\r\n\x1a\n"
    missing = await client.get(
        f"/api/messages/{message_id}/attachments/7", headers=bearer(mint, ALICE)
    )
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("GET", "/raw", None),
        ("GET", "/attachments/0", None),
        ("POST", "/move", {"folder": "Archive"}),
        ("POST", "/copy", {"folder": "Archive"}),
        ("POST", "/flags", {"add": ["\\Seen"]}),
        ("POST", "/read", None),
        ("POST", "/star", None),
        ("POST", "/labels", {"labels": ["x"]}),
        ("GET", "/row", None),
        ("DELETE", "", None),
    ],
)
async def test_another_users_token_gets_404(
    client_and_id: tuple[httpx.AsyncClient, int],
    mint: Callable[..., str],
    method: str,
    suffix: str,
    body: dict[str, object] | None,
) -> None:
    client, message_id = client_and_id
    response = await client.request(
        method, f"/api/messages/{message_id}{suffix}", json=body, headers=bearer(mint, BOB)
    )
    assert response.status_code == 404, response.text
    unknown = await client.request(
        method, f"/api/messages/{message_id + 1000}{suffix}", json=body, headers=bearer(mint, BOB)
    )
    assert unknown.status_code == 404
    assert response.json() == unknown.json()  # indistinguishable from a missing id
    still = await client.get(f"/api/messages/{message_id}", headers=bearer(mint, ALICE))
    assert still.status_code == 200 and still.json()["folder"] == "INBOX"


def test_sanitise_html_and_filenames() -> None:
    html, remote = sanitise_html(
        '<a href="javascript:alert(1)">a</a><IMG SRC="//cdn.example/x.png"><img src="cid:1">'
    )
    assert "javascript" not in html and remote and html.count("data-remote-image") == 1
    assert safe_filename("..\\..\\windows\\system32\\x.dll", 0) == "x.dll"
    assert safe_filename("../../", 2) == "attachment-3"
    assert safe_filename('a"\r\nb.txt', 0) == "ab.txt"
