"""Folders: list with counts, create/rename/delete, and message move/copy/flags/delete."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from VEZEPyEmail.services.delivery.local import deliver_local
from VEZEPyEmail.tests.conftest import provision

ALICE = "alice@vezeuniqverse.com"
BOB = "bob@vezeuniqverse.com"
SPECIAL = ["INBOX", "Sent", "Drafts", "Junk", "Trash", "Archive"]


def mail(n: int) -> bytes:
    return (
        f"From: s{n}@example.org\r\nSubject: note {n}\r\nMessage-ID: <{n}@example.org>\r\n\r\n"
        f"body {n}\r\n"
    ).encode()


@pytest.fixture
async def api(
    email_app: FastAPI,
    admin_headers: dict[str, str],
    mint: Callable[..., str],
    running: Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]],
) -> AsyncIterator[tuple[httpx.AsyncClient, list[int]]]:
    async with running(email_app) as client:
        await provision(client, admin_headers, ALICE)
        await provision(client, admin_headers, BOB)
        ids = []
        for n in range(3):
            (item,) = await deliver_local(
                email_app.state, raw=mail(n), envelope_from="", recipients=[ALICE]
            )
            ids.append(item.id)
        client.headers["Authorization"] = f"Bearer {mint(ALICE)}"
        yield client, ids


async def folders(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    response = await client.get("/api/folders", params={"user": ALICE})
    assert response.status_code == 200, response.text
    return {f["name"]: f for f in response.json()["folders"]}


async def listed(client: httpx.AsyncClient, folder: str) -> list[int]:
    response = await client.get("/api/messages", params={"user": ALICE, "folder": folder})
    assert response.status_code == 200, response.text
    return [m["id"] for m in response.json()["messages"]]


async def test_special_folders_and_counts(api: tuple[httpx.AsyncClient, list[int]]) -> None:
    client, ids = api
    found = await folders(client)
    assert list(found) == SPECIAL
    assert found["INBOX"]["total"] == 4 and found["INBOX"]["unread"] == 4  # + welcome
    assert found["Trash"]["special_use"] == "trash"
    await client.post(f"/api/messages/{ids[0]}/flags", json={"add": ["\\Seen"]})
    assert (await folders(client))["INBOX"]["unread"] == 3


async def test_folder_crud(api: tuple[httpx.AsyncClient, list[int]]) -> None:
    client, ids = api
    created = await client.post("/api/folders", json={"name": "Projects/2026"})
    assert created.status_code == 201, created.text
    assert (await client.post("/api/folders", json={"name": "Projects/2026"})).status_code == 409
    assert (await client.post("/api/folders", json={"name": "inbox"})).status_code == 409
    assert (await client.post("/api/folders", json={"name": "bad\x01"})).status_code == 400
    moved = await client.post(f"/api/messages/{ids[0]}/move", json={"folder": "Projects/2026"})
    assert moved.status_code == 200
    renamed = await client.patch("/api/folders/Projects/2026", json={"name": "Work"})
    assert renamed.status_code == 200 and renamed.json() == {
        "name": "Work",
        "special_use": None,
        "total": 1,
        "unread": 1,
    }
    assert await listed(client, "Work") == [ids[0]]
    for special in ("INBOX", "Trash"):
        assert (
            await client.patch(f"/api/folders/{special}", json={"name": "x"})
        ).status_code == 400
        assert (await client.delete(f"/api/folders/{special}")).status_code == 400
    assert (await client.patch("/api/folders/Nope", json={"name": "x"})).status_code == 404
    deleted = await client.delete("/api/folders/Work")
    assert deleted.status_code == 200 and deleted.json() == {"name": "Work", "moved_to_trash": 1}
    assert "Work" not in await folders(client)
    assert await listed(client, "Trash") == [ids[0]]
    assert (await client.delete("/api/folders/Work")).status_code == 404


async def test_move_copy_flags_delete_purge(api: tuple[httpx.AsyncClient, list[int]]) -> None:
    client, ids = api
    assert (
        await client.post(f"/api/messages/{ids[1]}/move", json={"folder": "Nowhere"})
    ).status_code == 404
    moved = await client.post(f"/api/messages/{ids[1]}/move", json={"folder": "Archive"})
    assert moved.status_code == 200 and ids[1] in await listed(client, "Archive")
    copied = await client.post(f"/api/messages/{ids[2]}/copy", json={"folder": "Archive"})
    assert copied.status_code == 201
    copy_id = copied.json()["id"]
    assert copy_id not in ids and ids[2] in await listed(client, "INBOX")
    assert set(await listed(client, "Archive")) == {ids[1], copy_id}
    raw = await client.get(f"/api/messages/{copy_id}/raw")
    assert raw.content == mail(2)

    flagged = await client.post(
        f"/api/messages/{ids[2]}/flags", json={"add": ["\\Flagged", "\\Answered"]}
    )
    assert set(flagged.json()["flags"]) == {"\\Flagged", "\\Answered"}
    cleared = await client.post(
        f"/api/messages/{ids[2]}/flags", json={"add": ["\\Seen"], "remove": ["\\Flagged"]}
    )
    assert set(cleared.json()["flags"]) == {"\\Seen", "\\Answered"}
    assert cleared.json()["unread"] is False
    bad = await client.post(f"/api/messages/{ids[2]}/flags", json={"add": ["\\Deleted"]})
    assert bad.status_code == 422

    first = await client.delete(f"/api/messages/{ids[2]}")
    assert first.json() == {"id": ids[2], "purged": False, "folder": "Trash"}
    second = await client.delete(f"/api/messages/{ids[2]}")
    assert second.json() == {"id": ids[2], "purged": True, "folder": None}
    assert (await client.get(f"/api/messages/{ids[2]}")).status_code == 404
    # The copy still reads its (shared) blob.
    assert (await client.get(f"/api/messages/{copy_id}/raw")).content == mail(2)


async def test_folders_of_another_user_are_refused(
    api: tuple[httpx.AsyncClient, list[int]], mint: Callable[..., str]
) -> None:
    client, _ids = api
    bob = {"Authorization": f"Bearer {mint(BOB)}"}
    assert (
        await client.get("/api/folders", params={"user": ALICE}, headers=bob)
    ).status_code == 403
    assert (
        await client.post("/api/folders", params={"user": ALICE}, json={"name": "x"}, headers=bob)
    ).status_code == 403
    own = await client.get("/api/folders", headers=bob)
    assert own.status_code == 200 and own.json()["user"] == BOB


async def test_changes_publish_events(
    email_app: FastAPI, api: tuple[httpx.AsyncClient, list[int]]
) -> None:
    client, ids = api
    async with email_app.state.bus.subscribe(f"email:events:{ALICE}") as subscription:
        await client.post(f"/api/messages/{ids[0]}/move", json={"folder": "Archive"})
        await client.post(f"/api/messages/{ids[0]}/flags", json={"add": ["\\Flagged"]})
        await client.delete(f"/api/messages/{ids[0]}")
        await client.delete(f"/api/messages/{ids[0]}")
        copied = await client.post(f"/api/messages/{ids[1]}/copy", json={"folder": "Junk"})
        events = []
        for _ in range(5):
            item = await subscription.get(5)
            assert item is not None
            events.append(item[1])
    assert [(e["type"], e["id"]) for e in events] == [
        ("message.updated", ids[0]),
        ("message.updated", ids[0]),
        ("message.updated", ids[0]),
        ("message.removed", ids[0]),
        ("message.created", copied.json()["id"]),
    ]
    assert events[0]["folder"] == "Archive" and events[2]["folder"] == "Trash"
    assert "\\Flagged" in events[1]["flags"] and events[4]["folder"] == "Junk"
