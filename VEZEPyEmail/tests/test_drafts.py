"""Drafts over HTTP: real messages in Drafts, autosave in place, send, discard, and 404s."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.tests.compose_helpers import ALICE, BOB, CAROL, Running, Setup, compose_setup

DOC = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


@pytest.fixture
async def setup(
    email_settings: EmailSettings,
    running: Running,
    admin_headers: dict[str, str],
    mint: Callable[..., str],
) -> AsyncIterator[Setup]:
    async with compose_setup(email_settings, running, admin_headers, mint) as made:
        yield made


async def test_draft_lifecycle_autosave_and_send(setup: Setup) -> None:
    client = setup.client
    upload = await setup.upload(ALICE, "pic.png", DOC, "image/png")
    created = await client.post(
        "/api/drafts",
        json={
            "to": [f"Bob <{BOB}>"],
            "bcc": [CAROL],
            "subject": "Draft one",
            "text": "first words",
            "html": "<p>first <i>words</i></p><img src=x onerror=alert(1)>",
            "attachments": [upload["id"]],
        },
        headers=setup.auth(ALICE),
    )
    assert created.status_code == 201, created.text
    draft = created.json()
    draft_id = draft["id"]
    assert draft["folder"] == "Drafts" and draft["attachments"][0]["id"] == upload["id"]

    # A real message in the Drafts folder, flagged \Draft.
    (listed,) = await setup.folder(ALICE, "Drafts")
    assert listed["id"] == draft_id and listed["subject"] == "Draft one"
    assert "\\Draft" in listed["flags"]

    # The editable fields come back, Bcc included; attachments as fresh uploads.
    await client.delete(f"/api/uploads/{upload['id']}", headers=setup.auth(ALICE))
    read = (await client.get(f"/api/drafts/{draft_id}", headers=setup.auth(ALICE))).json()
    assert read["to"] == [f"Bob <{BOB}>"] and read["bcc"] == [CAROL]
    assert read["subject"] == "Draft one" and read["text"].strip() == "first words"
    assert "<i>words</i>" in read["html"] and "onerror" not in read["html"]
    (again,) = read["attachments"]
    assert again["filename"] == "pic.png" and again["size"] == len(DOC)

    # Autosave replaces it in place: same id, one draft.
    saved = await client.put(
        f"/api/drafts/{draft_id}",
        json={
            "to": [BOB],
            "bcc": [CAROL],
            "subject": "Draft two",
            "text": "better words",
            "attachments": [again["id"]],
        },
        headers=setup.auth(ALICE),
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["id"] == draft_id
    (listed,) = await setup.folder(ALICE, "Drafts")
    assert listed["id"] == draft_id and listed["subject"] == "Draft two"

    sent = await client.post(f"/api/drafts/{draft_id}/send", headers=setup.auth(ALICE))
    assert sent.status_code == 202, sent.text
    statuses = {item["address"]: item["status"] for item in sent.json()["recipients"]}
    assert statuses == {BOB: "delivered", CAROL: "delivered"}
    assert await setup.folder(ALICE, "Drafts") == []
    gone = await client.get(f"/api/drafts/{draft_id}", headers=setup.auth(ALICE))
    assert gone.status_code == 404
    (received,) = await setup.folder(BOB, "INBOX")
    detail = await setup.detail(BOB, received["id"])
    assert detail["subject"] == "Draft two" and detail["text"].strip() == "better words"
    assert all(header["name"].lower() != "bcc" for header in detail["headers"])
    assert all(not header["name"].lower().startswith("x-veze") for header in detail["headers"])
    download = await client.get(
        f"/api/messages/{received['id']}/attachments/0", headers=setup.auth(BOB)
    )
    assert download.content == DOC
    (carol_copy,) = await setup.folder(CAROL, "INBOX")
    assert (await setup.raw(CAROL, carol_copy["id"]))["Bcc"] is None
    (sent_copy,) = await setup.folder(ALICE, "Sent")
    assert sent_copy["id"] == sent.json()["id"]


async def test_reply_draft_keeps_its_thread(setup: Setup) -> None:
    client = setup.client
    first = await client.post(
        "/api/send", json={"to": [BOB], "subject": "Plans"}, headers=setup.auth(ALICE)
    )
    (original,) = await setup.folder(BOB, "INBOX")
    created = await client.post(
        "/api/drafts",
        json={"to": [ALICE], "subject": "Re: Plans", "in_reply_to": original["id"]},
        headers=setup.auth(BOB),
    )
    draft_id = created.json()["id"]
    in_drafts = await setup.detail(BOB, draft_id)  # the draft sits in the conversation
    assert in_drafts["thread_id"] == first.json()["message_id"]
    assert in_drafts["in_reply_to"] == first.json()["message_id"]
    read = (await client.get(f"/api/drafts/{draft_id}", headers=setup.auth(BOB))).json()
    assert read["in_reply_to"] == original["id"] and read["to"] == [ALICE]
    sent = await client.post(f"/api/drafts/{draft_id}/send", headers=setup.auth(BOB))
    assert sent.status_code == 202, sent.text
    (reply,) = await setup.folder(ALICE, "INBOX")
    detail = await setup.detail(ALICE, reply["id"])
    assert detail["in_reply_to"] == first.json()["message_id"]
    assert detail["thread_id"] == first.json()["message_id"]
    assert "\\Answered" in (await setup.detail(BOB, original["id"]))["flags"]


async def test_other_users_drafts_are_not_found(setup: Setup) -> None:
    client = setup.client
    created = await client.post(
        "/api/drafts", json={"to": [CAROL], "subject": "mine"}, headers=setup.auth(ALICE)
    )
    draft_id = created.json()["id"]
    bob = setup.auth(BOB)
    assert (await client.get(f"/api/drafts/{draft_id}", headers=bob)).status_code == 404
    replaced = await client.put(f"/api/drafts/{draft_id}", json={"subject": "x"}, headers=bob)
    assert replaced.status_code == 404
    assert (await client.post(f"/api/drafts/{draft_id}/send", headers=bob)).status_code == 404
    assert (await client.delete(f"/api/drafts/{draft_id}", headers=bob)).status_code == 404
    # A message that is not a draft is no draft, even one's own.
    await client.post("/api/send", json={"to": [ALICE], "subject": "hi"}, headers=bob)
    (inbox,) = await setup.folder(ALICE, "INBOX")
    mine = setup.auth(ALICE)
    assert (await client.get(f"/api/drafts/{inbox['id']}", headers=mine)).status_code == 404
    # Saving checks addresses but not that there is one; sending a draft without any refuses.
    bad = await client.put(f"/api/drafts/{draft_id}", json={"to": ["@@"]}, headers=mine)
    assert bad.status_code == 422 and bad.json()["field"] == "to[0]"
    empty = await client.put(f"/api/drafts/{draft_id}", json={"subject": "later"}, headers=mine)
    assert empty.status_code == 200
    refused = await client.post(f"/api/drafts/{draft_id}/send", headers=mine)
    assert refused.status_code == 422 and refused.json()["error"] == "no_recipients"
    # Discarding: 204, then gone.
    assert (await client.delete(f"/api/drafts/{draft_id}", headers=mine)).status_code == 204
    assert await setup.folder(ALICE, "Drafts") == []
