"""Attachment uploads: sanitised names, the per-file limit, ownership, expiry."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.services.uploads.store import UploadNotFound, UploadStore
from VEZEPyEmail.tests.compose_helpers import ALICE, BOB, Running, Setup, compose_setup

LIMIT = 4096


@pytest.fixture
async def setup(
    email_settings: EmailSettings,
    running: Running,
    admin_headers: dict[str, str],
    mint: Callable[..., str],
) -> AsyncIterator[Setup]:
    async with compose_setup(
        email_settings, running, admin_headers, mint, upload_max_bytes=LIMIT
    ) as made:
        yield made


async def test_upload_limits_names_and_ownership(setup: Setup) -> None:
    client = setup.client
    limits = await client.get("/api/compose/limits", headers=setup.auth(ALICE))
    assert limits.status_code == 200 and limits.json()["upload_max_bytes"] == LIMIT
    hostile = await setup.upload(ALICE, "../../etc/passwd.html", b"<b>x</b>", "text/html")
    assert hostile["filename"] == "passwd.html" and hostile["content_type"] == "text/html"
    windows = await setup.upload(ALICE, "..\\..\\win\\ev:il?.exe", b"MZ")
    assert windows["filename"] == "evil.exe"
    typed = await setup.upload(ALICE, "notes.txt", b"hello", "bogus type")
    assert typed["content_type"] == "text/plain"  # guessed from the name when the type is junk
    exact = await setup.upload(ALICE, "exact.bin", b"\x01" * LIMIT)
    assert exact["size"] == LIMIT

    too_big = await client.post(
        "/api/uploads",
        files={"file": ("big.bin", b"\x00" * (LIMIT + 1), "application/octet-stream")},
        headers=setup.auth(ALICE),
    )
    assert too_big.status_code == 413 and too_big.json()["error"] == "upload_too_large"
    declared = await client.post(  # refused on its Content-Length, before the body is read
        "/api/uploads",
        files={"file": ("big.bin", b"\x00" * (LIMIT + 20_000), "application/octet-stream")},
        headers=setup.auth(ALICE),
    )
    assert declared.status_code == 413
    not_a_file = await client.post("/api/uploads", data={"file": "text"}, headers=setup.auth(ALICE))
    assert not_a_file.status_code == 400
    read_only = await client.post(
        "/api/uploads",
        files={"file": ("a.txt", b"a", "text/plain")},
        headers=setup.auth(ALICE, ("email.read",)),
    )
    assert read_only.status_code == 403

    # Bob cannot see or delete Alice's upload; Alice can, once.
    other = await client.delete(f"/api/uploads/{typed['id']}", headers=setup.auth(BOB))
    assert other.status_code == 404
    mine = await client.delete(f"/api/uploads/{typed['id']}", headers=setup.auth(ALICE))
    assert mine.status_code == 204
    again = await client.delete(f"/api/uploads/{typed['id']}", headers=setup.auth(ALICE))
    assert again.status_code == 404


async def test_unused_uploads_expire(tmp_path: Path) -> None:
    store = UploadStore(tmp_path, ttl_seconds=3600, max_pending_bytes=10_000)
    kept = await store.put(ALICE, data=b"keep", filename="a.txt", content_type="text/plain")
    upload, data = await store.get(ALICE, kept.id)
    assert data == b"keep" and upload.filename == "a.txt"
    with pytest.raises(UploadNotFound):
        await store.get(BOB, kept.id)  # owned by the uploader only
    assert await store.sweep() == 0

    # The same files seen by a store whose TTL has run out: expired, then swept away.
    expired = UploadStore(tmp_path, ttl_seconds=1e-9, max_pending_bytes=10_000)
    with pytest.raises(UploadNotFound):
        await expired.get(ALICE, kept.id)
    assert await expired.sweep() == 1
    assert not any(tmp_path.rglob("*.bin")) and not any(tmp_path.rglob("*.json"))

    # A user's pending uploads are bounded in bytes.
    await store.put(ALICE, data=b"x" * 9_000, filename="b", content_type=None)
    with pytest.raises(ValueError, match="pending uploads"):
        await store.put(ALICE, data=b"x" * 2_000, filename="c", content_type=None)
