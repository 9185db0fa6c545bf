"""Sending over HTTP, end to end: local delivery read back through the API, remote delivery
to a second local SMTP server (DKIM-signed), Bcc, threading, forwards, refusals, rate limit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import dkim  # type: ignore[import-untyped]
import pytest

from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.tests.compose_helpers import (
    ALICE,
    BOB,
    CAROL,
    REMOTE,
    Running,
    Setup,
    compose_setup,
)
from VEZEPyEmail.tests.outbound_helpers import eventually

PDF = bytes(range(256)) * 40 + b"%PDF-1.7\r\n\x00\xff end"


@pytest.fixture
async def setup(
    email_settings: EmailSettings,
    running: Running,
    admin_headers: dict[str, str],
    mint: Callable[..., str],
    request: pytest.FixtureRequest,
) -> AsyncIterator[Setup]:
    overrides: dict[str, Any] = getattr(request, "param", {})
    async with compose_setup(email_settings, running, admin_headers, mint, **overrides) as made:
        yield made


async def send(setup: Setup, sender: str, **body: Any) -> dict[str, Any]:
    response = await setup.client.post("/api/send", json=body, headers=setup.auth(sender))
    assert response.status_code == 202, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_send_to_local_remote_and_bcc(setup: Setup) -> None:
    upload = await setup.upload(ALICE, "Bericht März ü.pdf", PDF)
    assert upload["filename"] == "Bericht März ü.pdf" and upload["size"] == len(PDF)
    result = await send(
        setup,
        ALICE,
        to=[f"Bob <{BOB}>"],
        cc=[f"Dave <{REMOTE}>"],
        bcc=[CAROL],
        subject="Quarterly numbers",
        text="Hi Bob,\nthe report is attached.\n",
        html='<p>Hi <b>Bob</b><script>alert(1)</script></p><a href="javascript:x()">x</a>',
        attachments=[upload["id"]],
    )
    assert result["message_id"].endswith("@vezeuniqverse.com>")
    statuses = {item["address"]: item["status"] for item in result["recipients"]}
    assert statuses == {BOB: "delivered", CAROL: "delivered", REMOTE: "queued"}

    # Bob reads it through the API: headers, bodies, the attachment byte for byte.
    (listed,) = await setup.folder(BOB, "INBOX")
    detail = await setup.detail(BOB, listed["id"])
    assert detail["subject"] == "Quarterly numbers"
    assert detail["from_"] == ALICE  # From is the caller's own address, always
    assert detail["to"] == [BOB] and detail["cc"] == [REMOTE]
    assert detail["message_id"] == result["message_id"]
    names = [header["name"].lower() for header in detail["headers"]]
    assert "bcc" not in names and "return-path" in names and "received" in names
    assert "Hi Bob," in detail["text"]
    assert "<b>Bob</b>" in detail["html"] and "script" not in detail["html"]
    assert "javascript" not in detail["html"]
    (attachment,) = detail["attachments"]
    assert attachment["filename"] == "Bericht März ü.pdf"
    assert attachment["content_type"] == "application/pdf"
    download = await setup.client.get(
        f"/api/messages/{listed['id']}/attachments/0", headers=setup.auth(BOB)
    )
    assert download.status_code == 200 and download.content == PDF
    raw = await setup.raw(BOB, listed["id"])
    assert raw.get_content_type() == "multipart/mixed"
    assert [part.get_content_type() for part in raw.iter_parts()] == [
        "multipart/alternative",
        "application/pdf",
    ]
    source = await setup.client.get(f"/api/messages/{listed['id']}/raw", headers=setup.auth(BOB))
    # RFC 2231 for the non-ASCII name; the source is 7-bit throughout
    assert b"filename*=utf-8''Bericht%20M%C3%A4rz%20%C3%BC.pdf" in source.content
    assert max(source.content) < 128

    # Carol (Bcc) got it, and no copy names her.
    (carol_copy,) = await setup.folder(CAROL, "INBOX")
    carol_raw = await setup.raw(CAROL, carol_copy["id"])
    assert carol_raw["Bcc"] is None and CAROL not in carol_raw.as_string()

    # The sender's Sent copy is \Seen and has no Bcc either.
    (sent,) = await setup.folder(ALICE, "Sent")
    assert sent["id"] == result["id"] and "\\Seen" in sent["flags"]
    sent_raw = await setup.raw(ALICE, sent["id"])
    assert sent_raw["Bcc"] is None and sent_raw["Message-ID"] == result["message_id"]

    # The remote MX receives it DKIM-signed, without Bcc.
    received = await eventually(lambda: _first(setup))
    assert received.rcpt_tos == [REMOTE] and received.mail_from == ALICE
    assert received.content.startswith(b"DKIM-Signature:")
    assert b"Bcc" not in received.content and CAROL.encode() not in received.content
    key = setup.app.state.dkim_key

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        record: bytes = key.txt_record.encode()
        return record

    assert dkim.verify(received.content, dnsfunc=dnsfunc)

    # The upload was used up.
    gone = await setup.client.delete(f"/api/uploads/{upload['id']}", headers=setup.auth(ALICE))
    assert gone.status_code == 404


async def _first(setup: Setup) -> Any:
    return setup.mx.received[0] if setup.mx.received else None


async def test_reply_threads_and_marks_the_original_answered(setup: Setup) -> None:
    first = await send(setup, ALICE, to=[BOB], cc=[CAROL], subject="Lunch?", text="Noon?\n")
    (original,) = await setup.folder(BOB, "INBOX")

    prefill = await setup.client.get(
        f"/api/messages/{original['id']}/reply", headers=setup.auth(BOB)
    )
    assert prefill.status_code == 200, prefill.text
    fields = prefill.json()
    assert fields["to"] == [ALICE] and fields["cc"] == []
    assert fields["subject"] == "Re: Lunch?" and fields["in_reply_to"] == original["id"]
    assert "wrote:\n> Noon?" in fields["text"] and fields["text"].startswith("\n\nOn ")
    everyone = await setup.client.get(
        f"/api/messages/{original['id']}/reply", params={"all": "true"}, headers=setup.auth(BOB)
    )
    assert everyone.json()["to"] == [ALICE] and everyone.json()["cc"] == [CAROL]

    reply = await send(
        setup,
        BOB,
        to=fields["to"],
        subject=fields["subject"],
        text="Yes!" + fields["text"],
        in_reply_to=original["id"],
    )
    (answer,) = await setup.folder(ALICE, "INBOX")
    detail = await setup.detail(ALICE, answer["id"])
    assert detail["subject"] == "Re: Lunch?"
    assert detail["in_reply_to"] == first["message_id"]
    assert detail["references"] == [first["message_id"]]
    assert detail["thread_id"] == first["message_id"]
    assert detail["message_id"] == reply["message_id"]
    marked = await setup.detail(BOB, original["id"])
    assert "\\Answered" in marked["flags"]

    # A reply to the reply: "Re:" does not stack, References grow by one.
    again = (
        await setup.client.get(f"/api/messages/{answer['id']}/reply", headers=setup.auth(ALICE))
    ).json()
    assert again["subject"] == "Re: Lunch?"
    third = await send(setup, ALICE, to=[BOB], subject=again["subject"], in_reply_to=answer["id"])
    bob_inbox = await setup.folder(BOB, "INBOX")
    latest = await setup.detail(BOB, bob_inbox[0]["id"])
    assert latest["message_id"] == third["message_id"]
    assert latest["references"] == [first["message_id"], reply["message_id"]]
    assert latest["thread_id"] == first["message_id"]


async def test_forward_carries_the_attachments_and_labels_the_original(setup: Setup) -> None:
    upload = await setup.upload(ALICE, "plan.pdf", PDF)
    await send(
        setup, ALICE, to=[BOB], subject="Fwd: Plan", text="See plan.\n", attachments=[upload["id"]]
    )
    (original,) = await setup.folder(BOB, "INBOX")
    prefill = await setup.client.get(
        f"/api/messages/{original['id']}/forward", headers=setup.auth(BOB)
    )
    assert prefill.status_code == 200, prefill.text
    fields = prefill.json()
    assert fields["subject"] == "Fwd: Plan" and fields["to"] == []
    assert "---------- Forwarded message ----------" in fields["text"]
    assert f"From: {ALICE}" in fields["text"] and "> See plan." in fields["text"]
    (carried,) = fields["attachments"]
    assert carried["filename"] == "plan.pdf" and carried["size"] == len(PDF)

    await send(
        setup,
        BOB,
        to=[CAROL],
        subject=fields["subject"],
        text=fields["text"],
        attachments=[carried["id"]],
        forward_of=original["id"],
    )
    (forwarded,) = await setup.folder(CAROL, "INBOX")
    download = await setup.client.get(
        f"/api/messages/{forwarded['id']}/attachments/0", headers=setup.auth(CAROL)
    )
    assert download.content == PDF
    labelled = await setup.detail(BOB, original["id"])
    assert "$Forwarded" in labelled["labels"]


async def _refusal(setup: Setup, body: dict[str, Any], status: int = 422) -> dict[str, Any]:
    response = await setup.client.post("/api/send", json=body, headers=setup.auth(ALICE))
    assert response.status_code == status, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.mark.parametrize("setup", [{"max_message_bytes": 64 * 1024}], indirect=True)
async def test_refusals_name_the_field(setup: Setup) -> None:
    bad = await _refusal(setup, {"to": [BOB, "not an address"], "subject": "x"})
    assert bad["field"] == "to[1]" and bad["error"] == "bad_address"
    empty = await _refusal(setup, {"to": [], "subject": "x"})
    assert empty["field"] == "to" and empty["error"] == "no_recipients"
    unknown = await _refusal(setup, {"to": [BOB], "cc": ["nobody@vezeuniqverse.com"]})
    assert unknown["field"] == "cc[0]" and unknown["error"] == "recipient_unknown"
    assert "nobody@vezeuniqverse.com" in unknown["detail"]
    big = await setup.upload(ALICE, "big.bin", b"\x00" * (60 * 1024))
    too_big = await _refusal(setup, {"to": [BOB], "attachments": [big["id"]]})
    assert too_big["field"] == "attachments" and too_big["error"] == "message_too_large"
    # Nothing of those went anywhere.
    assert await setup.folder(BOB, "INBOX") == [] and await setup.folder(ALICE, "Sent") == []

    # Other people's ids are not found, whatever they are.
    bob_upload = await setup.upload(BOB, "b.txt", b"bob's", "text/plain")
    foreign = await _refusal(setup, {"to": [BOB], "attachments": [bob_upload["id"]]}, 404)
    assert foreign["field"] == "attachments[0]"
    await send(setup, BOB, to=[CAROL], subject="private")
    (carols,) = await setup.folder(CAROL, "INBOX")
    await _refusal(setup, {"to": [BOB], "in_reply_to": carols["id"]}, 404)
    await _refusal(setup, {"to": [BOB], "forward_of": carols["id"]}, 404)
    for path in ("reply", "forward"):
        response = await setup.client.get(
            f"/api/messages/{carols['id']}/{path}", headers=setup.auth(ALICE)
        )
        assert response.status_code == 404

    # Sending needs email.send.
    read_only = await setup.client.post(
        "/api/send", json={"to": [BOB]}, headers=setup.auth(ALICE, ("email.read",))
    )
    assert read_only.status_code == 403


@pytest.mark.parametrize("setup", [{"send_rate_limit": 2}], indirect=True)
async def test_sending_is_rate_limited_per_user(setup: Setup) -> None:
    for number in range(2):
        await send(setup, ALICE, to=[BOB], subject=f"n{number}")
    refused = await setup.client.post(
        "/api/send", json={"to": [BOB], "subject": "n2"}, headers=setup.auth(ALICE)
    )
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert len(await setup.folder(BOB, "INBOX")) == 2
    # Another user has a budget of their own.
    await send(setup, BOB, to=[ALICE], subject="mine")


@pytest.mark.parametrize("setup", [{"send_rate_limit": 2}], indirect=True)
async def test_refused_sends_do_not_spend_the_rate_limit(setup: Setup) -> None:
    # More refusals than the whole budget: a mistyped local address, an upload that is not
    # there, a forward of a message that does not exist.
    refusals = [
        ({"to": ["bobb@vezeuniqverse.com"], "subject": "typo"}, 422),
        ({"to": [BOB], "attachments": ["no-such-upload"]}, 404),
        ({"to": [BOB], "forward_of": 2**31 - 1}, 404),
    ]
    for body, status in refusals:
        response = await setup.client.post("/api/send", json=body, headers=setup.auth(ALICE))
        assert response.status_code == status, response.text
    for number in range(2):
        await send(setup, ALICE, to=[BOB], subject=f"n{number}")
    refused = await setup.client.post(
        "/api/send", json={"to": [BOB], "subject": "n2"}, headers=setup.auth(ALICE)
    )
    assert refused.status_code == 429


async def test_sending_to_oneself_files_inbox_and_sent(setup: Setup) -> None:
    result = await send(setup, ALICE, to=[ALICE], subject="note to self", text="milk")
    (inbox,) = await setup.folder(ALICE, "INBOX")
    (sent,) = await setup.folder(ALICE, "Sent")
    assert sent["id"] == result["id"] and inbox["id"] != sent["id"]
    assert "\\Seen" in sent["flags"] and inbox["unread"]
