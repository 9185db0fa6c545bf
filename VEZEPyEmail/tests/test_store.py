"""The content-addressed blob store: durable writes, reuse, and safe keys."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from VEZEPyEmail.services.store.blobs import BlobNotFound, BlobStore


async def test_put_fsyncs_file_and_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    store = BlobStore(tmp_path / "mail")
    key = await store.put(b"x")
    assert len(synced) >= 2  # the file, then its directory
    assert store.path_for(key).read_bytes() == b"x"
    assert not [p for p in store.path_for(key).parent.iterdir() if p.name.startswith(".tmp")]
    synced.clear()
    assert await store.put(b"x") == key  # an existing blob is reused
    assert synced == []
    with pytest.raises(ValueError, match="64"):
        store.path_for("../../etc/passwd")


async def test_concurrent_puts_of_the_same_bytes_and_missing_keys(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "mail")
    keys = await asyncio.gather(*(store.put(b"same bytes") for _ in range(10)))
    assert len(set(keys)) == 1
    assert await store.get(keys[0]) == b"same bytes"
    with pytest.raises(BlobNotFound):
        await store.get("0" * 64)
    empty = await store.put(b"")
    assert await store.get(empty) == b""
